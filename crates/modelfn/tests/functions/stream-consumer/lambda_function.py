# A stream consumer for the stream-source tests: fails a batch holding a record with
# poison=1 (before doing anything), else sleeps as its first record asks and prints one
# BATCH line with its shard, its records' seq fields and when it ran. With SINK set
# (host:port of a Redis), it also pushes that line to the list `processed` there: an
# effect outside modelfn, which a kill of the server cannot take back.
import json
import os
import socket
import time


def sink(line):
    host, port = os.environ["SINK"].rsplit(":", 1)
    data = line.encode()
    command = b"*3\r\n$5\r\nRPUSH\r\n$9\r\nprocessed\r\n$%d\r\n%s\r\n" % (len(data), data)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(command)
        if not s.recv(64).startswith(b":"):
            raise RuntimeError("RPUSH failed")


def lambda_handler(event, context):
    records = event["Records"]
    for r in records:
        if r["fields"].get("poison") == "1":
            raise ValueError("poison record %s" % r["id"])
    start = time.time()
    time.sleep(float(records[0]["fields"].get("sleep", "0")))
    line = json.dumps({
        "shard": records[0]["shard"],
        "seqs": [int(r["fields"]["seq"]) for r in records],
        "keys": [r["fields"].get("key") for r in records],
        "start": start,
        "end": time.time(),
    })
    if "SINK" in os.environ:
        sink(line)
    print("BATCH " + line)
    return {"processed": len(records)}
