"""boto3's sagemaker-runtime against modelfn. Usage: sagemaker_boto3.py ENDPOINT KEY_ID SECRET

Expects the cancer-linear and iris ONNX functions and the addfive Python function.
"""
import json
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, key_id, secret = sys.argv[1:4]
sm = boto3.client("runtime.sagemaker", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id=key_id, aws_secret_access_key=secret,
                  config=Config(retries={"max_attempts": 1}))
checks = 0


def check(cond, what):
    global checks
    if not cond:
        print("FAILED:", what)
        sys.exit(1)
    checks += 1


# Seed 000's row, as its handler sends it.
row = open(sys.argv[4]).read().strip()
r = sm.invoke_endpoint(EndpointName="cancer-linear", ContentType="text/csv", Body=row)
out = json.loads(r["Body"].read().decode())
p = out["predictions"][0]
check(0.0 <= p["score"] <= 1.0 and p["predicted_label"] in (0, 1), "linear-learner answer %r" % out)
check((p["score"] > 0.5) == (p["predicted_label"] == 1), "score and label agree %r" % p)
check(r["ContentType"] == "application/json", "content type")

# Two rows at once; JSON in.
r = sm.invoke_endpoint(EndpointName="cancer-linear", ContentType="text/csv", Body=row + "\n" + row)
check(len(json.loads(r["Body"].read())["predictions"]) == 2, "two rows, two predictions")
r = sm.invoke_endpoint(EndpointName="iris", ContentType="application/json", Body=json.dumps([6.9, 3.1, 5.1, 2.3]))
p = json.loads(r["Body"].read())["predictions"][0]
check(p["predicted_label"] == 2 and len(p["score"]) == 3, "multi-class answer %r" % p)
check(r["InvokedProductionVariant"] == "1", "the variant that ran is the version %r" % r.get("InvokedProductionVariant"))

# Production variants are versions (or aliases): TargetVariant picks one.
r = sm.invoke_endpoint(EndpointName="iris", ContentType="application/json", Body=json.dumps([6.9, 3.1, 5.1, 2.3]), TargetVariant="1")
check(r["InvokedProductionVariant"] == "1", "TargetVariant=1 ran %r" % r.get("InvokedProductionVariant"))
try:
    sm.invoke_endpoint(EndpointName="iris", ContentType="application/json", Body=json.dumps([6.9, 3.1, 5.1, 2.3]), TargetVariant="9")
    check(False, "TargetVariant=9 should raise")
except ClientError as e:
    check(e.response["Error"]["Code"] == "ValidationError" and "no version 9" in str(e), "TargetVariant=9: %s" % e)

# Errors as boto3 expects them.
for name in ["no-such-endpoint", "addfive"]:
    try:
        sm.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=row)
        check(False, "%s should raise" % name)
    except ClientError as e:
        check(e.response["Error"]["Code"] == "ValidationError", "%s: %r" % (name, e.response["Error"]))
try:
    sm.invoke_endpoint(EndpointName="cancer-linear", ContentType="text/csv", Body="1,2,x")
    check(False, "a bad row should raise")
except sm.exceptions.ModelError as e:
    check(e.response["OriginalStatusCode"] == 400, "ModelError carries 400: %r" % e.response)

print("OK %d checks" % checks)
