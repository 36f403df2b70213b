"""boto3's provisioned concurrency calls against modelfn's Lambda API.
Usage: lambda_provisioned.py ENDPOINT KEY_ID SECRET FUNCTION PLAIN_KEY_ID PLAIN_SECRET

Expects FUNCTION to have versions 1 and 2 and an alias 'live'; KEY may manage, PLAIN_KEY
may only invoke and read. Exits non-zero on the
first failed check, saying which.
"""
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, key_id, secret, fn, plain_id, plain_secret = sys.argv[1:7]


def client(key, secret_key):
    return boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret_key,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


lam = client(key_id, secret)
plain = client(plain_id, plain_secret)
checks = 0


def check(cond, what):
    global checks
    if not cond:
        print("FAILED:", what)
        sys.exit(1)
    checks += 1


def error_code(call, **kw):
    try:
        call(**kw)
    except ClientError as e:
        return e.response["Error"]["Code"]
    return None


put = lam.put_provisioned_concurrency_config(
    FunctionName=fn, Qualifier="1", ProvisionedConcurrentExecutions=1
)
check(put["RequestedProvisionedConcurrentExecutions"] == 1, f"put answers what was asked: {put}")
check(put["Status"] in ("IN_PROGRESS", "READY"), f"put status: {put}")
check(put["ResponseMetadata"]["HTTPStatusCode"] == 202, "put is 202, as on Lambda")

deadline = time.time() + 60
while True:
    got = lam.get_provisioned_concurrency_config(FunctionName=fn, Qualifier="1")
    if got["Status"] != "IN_PROGRESS" or time.time() > deadline:
        break
    time.sleep(0.2)
check(got["Status"] == "READY", f"version 1 gets ready: {got}")
check(got["AllocatedProvisionedConcurrentExecutions"] == 1, f"allocated: {got}")
check(got["AvailableProvisionedConcurrentExecutions"] == 1, f"available: {got}")

# An alias, by a partial ARN this time.
lam.put_provisioned_concurrency_config(
    FunctionName=f"000000000000:function:{fn}", Qualifier="live", ProvisionedConcurrentExecutions=2
)
listed = lam.list_provisioned_concurrency_configs(FunctionName=fn)["ProvisionedConcurrencyConfigs"]
arns = sorted(c["FunctionArn"].rsplit(":", 2)[-2:][1] for c in listed)
check(arns == ["1", "live"], f"list names both qualifiers: {listed}")

check(
    error_code(lam.put_provisioned_concurrency_config, FunctionName=fn, Qualifier="$LATEST",
               ProvisionedConcurrentExecutions=1) == "InvalidParameterValueException",
    "$LATEST is refused, as on Lambda",
)
check(
    error_code(lam.put_provisioned_concurrency_config, FunctionName=fn, Qualifier="nope",
               ProvisionedConcurrentExecutions=1) == "ResourceNotFoundException",
    "a missing alias is 404",
)
check(
    error_code(lam.put_provisioned_concurrency_config, FunctionName=fn, Qualifier="1",
               ProvisionedConcurrentExecutions=50) == "InvalidParameterValueException",
    "more than the function may run at once is refused",
)

# A key made without --manage reads, but may not change anything.
check(plain.get_provisioned_concurrency_config(FunctionName=fn, Qualifier="1")["Status"] == "READY",
      "a plain key reads the setting")
for call, args in [
    (plain.put_provisioned_concurrency_config, dict(FunctionName=fn, Qualifier="1",
                                                    ProvisionedConcurrentExecutions=2)),
    (plain.delete_provisioned_concurrency_config, dict(FunctionName=fn, Qualifier="1")),
]:
    check(error_code(call, **args) == "AccessDeniedException", f"a plain key may not {call.__name__}")
check(lam.get_provisioned_concurrency_config(FunctionName=fn, Qualifier="1")
      ["RequestedProvisionedConcurrentExecutions"] == 1, "the refused put changed nothing")

lam.delete_provisioned_concurrency_config(FunctionName=fn, Qualifier="1")
check(
    error_code(lam.get_provisioned_concurrency_config, FunctionName=fn, Qualifier="1")
    == "ProvisionedConcurrencyConfigNotFoundException",
    "a deleted config is gone",
)
lam.delete_provisioned_concurrency_config(FunctionName=fn, Qualifier="live")
print(f"ok: {checks} checks")
