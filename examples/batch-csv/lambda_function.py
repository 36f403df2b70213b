"""Batch predictions from a bucket (issue 13's object-store trigger).

Invoked with S3's event record when a `.csv` lands under `incoming/` in the `uploads`
bucket. Reads the CSV (a header row naming iris's inputs sl, sw, pl, pw, then rows),
scores every row with the native `iris` model in one batch call, and writes
`NAME.predictions.csv` beside it: the rows with a `prediction` column. Only the standard
library: the bucket and the model are modelfn's API at AWS_ENDPOINT_URL.

Its own output also ends in `.csv` under `incoming/`, so it skips `*.predictions.csv`
(as AWS advises for a function that writes where it is triggered: never trigger itself).
"""
import csv
import io
import json
import os
import urllib.parse
import urllib.request

ENDPOINT = os.environ["AWS_ENDPOINT_URL"].rstrip("/")
MODEL = os.environ.get("MODEL", "iris")
SUFFIX = ".predictions.csv"


def object_url(bucket, key):
    return "%s/v1/buckets/%s/%s" % (ENDPOINT, bucket, urllib.parse.quote(key))


def score(rows):
    request = urllib.request.Request(
        "%s/v1/functions/%s/invoke" % (ENDPOINT, MODEL),
        data=json.dumps({"instances": rows}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)["predictions"]


def lambda_handler(event, context):
    written = []
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
        if key.endswith(SUFFIX):
            continue
        with urllib.request.urlopen(object_url(bucket, key)) as body:
            table = list(csv.DictReader(io.StringIO(body.read().decode("utf-8"))))
        if not table:
            continue
        predictions = score(table)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(table[0].keys()) + ["prediction"])
        writer.writeheader()
        for row, p in zip(table, predictions):
            writer.writerow(dict(row, prediction=p["prediction"]))
        target = key[: -len(".csv")] + SUFFIX
        put = urllib.request.Request(
            object_url(bucket, target), data=out.getvalue().encode(), method="PUT"
        )
        urllib.request.urlopen(put).close()
        written.append({"key": target, "rows": len(table)})
    return {"written": written}
