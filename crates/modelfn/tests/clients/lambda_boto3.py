"""boto3 against modelfn's Lambda API. Usage: lambda_boto3.py ENDPOINT KEY_ID SECRET

Expects functions iris (ONNX), addfive (Python), behaviours (Python, from tests/functions)
and addfive-stopped (reserved concurrency 0) to be deployed. Exits non-zero on the first
failed check, saying which.
"""
import base64
import json
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, key_id, secret = sys.argv[1:4]


def client(secret_key=secret):
    return boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret_key,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


lam = client()
checks = 0


def check(cond, what):
    global checks
    if not cond:
        print("FAILED:", what)
        sys.exit(1)
    checks += 1


# A native model, with LogType=Tail and a Qualifier.
r = lam.invoke(FunctionName="iris", Qualifier="$LATEST", LogType="Tail", Payload=json.dumps({"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}))
check(r["StatusCode"] == 200, "iris status %r" % r["StatusCode"])
check(json.loads(r["Payload"].read())["prediction"] == "virginica", "iris prediction")
check(r["ExecutedVersion"] == "1", "iris executed version %r" % r.get("ExecutedVersion"))
check("FunctionError" not in r, "iris has no function error")
log = base64.b64decode(r["LogResult"]).decode()
rid = r["ResponseMetadata"]["RequestId"]
check(f"START RequestId: {rid} Version: 1" in log and f"END RequestId: {rid}" in log,
      "a model's tail has START and END %r" % log)
check(f"REPORT RequestId: {rid}\tDuration: " in log and "Billed Duration: " in log
      and "Memory Size: " in log, "a model's tail has its REPORT %r" % log)

# A Python handler by partial ARN and with the version number as qualifier; the log tail.
r = lam.invoke(FunctionName="000000000000:function:addfive", Qualifier="1", LogType="Tail", Payload=b'{"num": "15"}')
check(r["Payload"].read() == b"20", "addfive payload")
log = base64.b64decode(r["LogResult"]).decode()
check("START RequestId:" in log and "REPORT RequestId:" in log and "Billed Duration" in log, "addfive log tail: %r" % log)
check(r["ResponseMetadata"]["RequestId"] in log, "the log tail is this request's")

# A full ARN, percent-encoded in the path by botocore.
r = lam.invoke(FunctionName="arn:aws:lambda:us-east-1:000000000000:function:addfive", Payload=b'{"num": "test"}')
check(r["Payload"].read() == b"0", "addfive by ARN")

# A function error is not an API error.
r = lam.invoke(FunctionName="behaviours", Payload=json.dumps({"action": "raise"}))
check(r["StatusCode"] == 200 and r.get("FunctionError") == "Unhandled", "function error: %r" % r)
err = json.loads(r["Payload"].read())
check(err["errorType"] == "ValueError" and err["errorMessage"] == "boom: on purpose", "error payload %r" % err)

# Event and DryRun.
r = lam.invoke(FunctionName="addfive", InvocationType="Event", Payload=b'{"num": "1"}')
check(r["StatusCode"] == 202, "Event answers 202")
try:
    lam.invoke(FunctionName="addfive", InvocationType="Event", Payload=b'{"num": "%s"}' % (b"1" * 300000))
    check(False, "a 300 KB Event should be refused")
except ClientError as e:
    check(e.response["Error"]["Code"] == "RequestTooLargeException", "a large Event: %r" % e.response["Error"])
r = lam.invoke(FunctionName="addfive", InvocationType="DryRun")
check(r["StatusCode"] == 204, "DryRun answers 204")

# Errors botocore turns into the right exceptions.
for name, qualifier, want in [("nope", None, "ResourceNotFoundException"), ("addfive", "7", "ResourceNotFoundException"),
                              ("addfive-stopped", None, "TooManyRequestsException")]:
    try:
        kwargs = {"FunctionName": name, "Payload": b"{}"}
        if qualifier:
            kwargs["Qualifier"] = qualifier
        lam.invoke(**kwargs)
        check(False, "%s should have raised %s" % (name, want))
    except ClientError as e:
        check(e.response["Error"]["Code"] == want, "%s raised %s, not %s" % (name, e.response["Error"]["Code"], want))
        if want == "TooManyRequestsException":
            check(isinstance(e, lam.exceptions.TooManyRequestsException), "a modeled TooManyRequestsException")
try:
    lam.invoke(FunctionName="addfive", Payload=b"{not json")
    check(False, "bad JSON should raise")
except lam.exceptions.InvalidRequestContentException:
    checks += 1

# Management calls.
conf = lam.get_function(FunctionName="addfive")["Configuration"]
check(conf["FunctionName"] == "addfive" and conf["MemorySize"] == 128 and conf["Timeout"] == 3, "GetFunction %r" % conf)
names = sorted(f["FunctionName"] for f in lam.list_functions()["Functions"])
check({"iris", "addfive", "behaviours"} <= set(names), "ListFunctions %r" % names)

# A wrong secret is refused.
try:
    client("not-the-secret").invoke(FunctionName="addfive", Payload=b"{}")
    check(False, "a wrong secret should be refused")
except ClientError as e:
    check(e.response["Error"]["Code"] == "InvalidSignatureException", "wrong secret: %r" % e.response["Error"])

# Requests signed by botocore's own SigV4 signer, then tampered with.
import hashlib
import urllib.error
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def signed(body, service="lambda", region="us-east-1"):
    req = AWSRequest(method="POST", url=endpoint + "/2015-03-31/functions/addfive/invocations", data=body,
                     headers={"Content-Type": "application/json",
                              "X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    SigV4Auth(Credentials(key_id, secret), service, region).add_auth(req)
    return req


def send(req, body=None, extra=None):
    headers = dict(req.headers.items())
    headers.update(extra or {})
    r = urllib.request.Request(req.url, data=req.body if body is None else body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(r) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


original = signed(b'{"num": "15"}')
status, _, body = send(original)
check((status, body) == (200, b"20"), "a botocore-signed request: %r %r" % (status, body))
status, headers, body = send(original, body=b'{"num": "1000"}')
check(status == 403 and headers.get("x-amzn-ErrorType") == "XAmzContentSHA256Mismatch",
      "a replay with a new body and the old hash: %r %r" % (status, body))
for service, region in [("sagemaker", "us-east-1"), ("lambda", "eu-west-1")]:
    status, headers, body = send(signed(b"{}", service, region))
    check(status == 403 and headers.get("x-amzn-ErrorType") == "InvalidSignatureException",
          "signed for %s in %s: %r %r" % (service, region, status, body))
status, _, body = send(original, extra={"X-Amz-Invocation-Type": "Event"})
check(status == 403 and b"not signed" in body, "an unsigned X-Amz header added: %r %r" % (status, body))

print("OK %d checks" % checks)
