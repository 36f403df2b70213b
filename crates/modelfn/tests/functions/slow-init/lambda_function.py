# A function whose init takes a second (as heavy imports do), so a cold start is plain to
# see; it answers the version that ran and which instance answered.
import os
import time
import uuid

time.sleep(1.0)
INSTANCE = uuid.uuid4().hex


def lambda_handler(event, context):
    time.sleep(float(event.get("sleep", 0)))
    return {"version": context.function_version, "instance": INSTANCE}
