# A function whose init takes a second (as heavy imports do), so a cold start is plain to
# see; it answers the version that ran and which instance answered.
import os
import time
import uuid

from snapshot_restore_py import register_after_restore

time.sleep(1.0)
INSTANCE = uuid.uuid4().hex


@register_after_restore
def new_identity():
    # Each instance restored from the snap-start template is a new one: what must be
    # unique is made after the restore, as Lambda SnapStart advises.
    global INSTANCE
    INSTANCE = uuid.uuid4().hex


def lambda_handler(event, context):
    time.sleep(float(event.get("sleep", 0)))
    return {"version": context.function_version, "instance": INSTANCE}
