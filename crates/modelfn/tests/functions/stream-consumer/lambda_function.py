# A stream consumer for the stream-source tests: fails a batch holding a record with
# poison=1 (before doing anything), else sleeps as its first record asks and prints one
# BATCH line with its shard, its records' seq fields and when it ran.
import json
import time


def lambda_handler(event, context):
    records = event["Records"]
    for r in records:
        if r["fields"].get("poison") == "1":
            raise ValueError("poison record %s" % r["id"])
    start = time.time()
    time.sleep(float(records[0]["fields"].get("sleep", "0")))
    print("BATCH " + json.dumps({
        "shard": records[0]["shard"],
        "seqs": [int(r["fields"]["seq"]) for r in records],
        "keys": [r["fields"].get("key") for r in records],
        "start": start,
        "end": time.time(),
    }))
    return {"processed": len(records)}
