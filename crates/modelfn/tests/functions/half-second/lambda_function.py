# Seed 002's inference as the cost report sees it: half a second at 8 GB.
import time


def lambda_handler(event, context):
    time.sleep(0.5)
    return {"ok": True}
