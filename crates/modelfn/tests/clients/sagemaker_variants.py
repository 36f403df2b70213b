"""boto3's sagemaker and sagemaker-runtime clients on an alias endpoint's production
variants. Usage: sagemaker_variants.py ENDPOINT KEY_ID SECRET PLAIN_KEY_ID PLAIN_SECRET
(KEY may manage; PLAIN_KEY may only invoke and read).

Expects iris with versions 1, 2, 3 and an alias prod = 1:60,2:30,3:10. Exits non-zero on
the first failed check, saying which.
"""
import collections
import json
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, key_id, secret, plain_id, plain_secret = sys.argv[1:6]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", config=Config(retries={"max_attempts": 1}))
rt = boto3.client("sagemaker-runtime", aws_access_key_id=key_id, aws_secret_access_key=secret, **kw)
sm = boto3.client("sagemaker", aws_access_key_id=key_id, aws_secret_access_key=secret, **kw)
plain = boto3.client("sagemaker", aws_access_key_id=plain_id, aws_secret_access_key=plain_secret, **kw)
ROW = json.dumps([6.9, 3.1, 5.1, 2.3])
checks = 0


def check(cond, what):
    global checks
    if not cond:
        print("FAILED:", what)
        sys.exit(1)
    checks += 1


def error_code(call, **args):
    try:
        call(**args)
    except ClientError as e:
        return e.response["Error"]["Code"], str(e)
    return None, ""


def weights(name):
    d = sm.describe_endpoint(EndpointName=name)
    return {v["VariantName"]: v["CurrentWeight"] for v in d["ProductionVariants"]}, d


def invoked(n, **args):
    return collections.Counter(
        rt.invoke_endpoint(EndpointName="iris:prod", ContentType="application/json", Body=ROW,
                           **args)["InvokedProductionVariant"]
        for _ in range(n))


w, d = weights("iris:prod")
check(w == {"1": 60.0, "2": 30.0, "3": 10.0}, f"the alias's versions are its variants: {d}")
check(d["EndpointStatus"] == "InService", f"status: {d}")
w, _ = weights("iris")
check(list(w.values()) == [100.0], f"a function endpoint has one variant, its latest: {w}")

seen = invoked(300)
check(set(seen) <= {"1", "2", "3"} and seen["1"] > seen["3"], f"routed by weight: {seen}")
check(invoked(5, TargetVariant="2") == {"2": 5}, "TargetVariant reaches its variant")
code, text = error_code(rt.invoke_endpoint, EndpointName="iris:prod", ContentType="application/json",
                        Body=ROW, TargetVariant="4")
check(code == "ValidationError" and "its variants are 1, 2, 3" in text, f"unknown variant: {text}")

# A key made without --manage reads endpoints but may not move them.
check(plain.describe_endpoint(EndpointName="iris:prod")["EndpointName"] == "iris:prod", "a plain key reads")
code, text = error_code(plain.update_endpoint_weights_and_capacities, EndpointName="iris:prod",
                        DesiredWeightsAndCapacities=[{"VariantName": "3", "DesiredWeight": 1.0}])
check(code == "AccessDeniedException" and "--manage" in text, f"a plain key may not move weights: {text}")

# Endpoint weights move the alias.
sm.update_endpoint_weights_and_capacities(EndpointName="iris:prod", DesiredWeightsAndCapacities=[
    {"VariantName": "1", "DesiredWeight": 0.0},
    {"VariantName": "2", "DesiredWeight": 0.0},
    {"VariantName": "3", "DesiredWeight": 1.0},
])
w, _ = weights("iris:prod")
check(w == {"1": 0.0, "2": 0.0, "3": 100.0}, f"weights moved: {w}")
check(invoked(20) == {"3": 20}, "all calls on variant 3")
# Relative weights become percentages; a variant not named keeps its weight.
sm.update_endpoint_weights_and_capacities(EndpointName="iris:prod", DesiredWeightsAndCapacities=[
    {"VariantName": "1", "DesiredWeight": 200.0},
    {"VariantName": "2", "DesiredWeight": 100.0},
])
w, _ = weights("iris:prod")
check(w == {"1": 50.0, "2": 25.0, "3": 25.0}, f"relative weights: {w}")

for args, says in [
    (dict(EndpointName="iris", DesiredWeightsAndCapacities=[{"VariantName": "3", "DesiredWeight": 1.0}]),
     "alias endpoint"),
    (dict(EndpointName="iris:prod", DesiredWeightsAndCapacities=[{"VariantName": "7", "DesiredWeight": 1.0}]),
     "not a production variant"),
    (dict(EndpointName="iris:prod",
          DesiredWeightsAndCapacities=[{"VariantName": "1", "DesiredInstanceCount": 3}]),
     "DesiredInstanceCount"),
    (dict(EndpointName="iris:nope", DesiredWeightsAndCapacities=[{"VariantName": "1", "DesiredWeight": 1.0}]),
     "Could not find endpoint"),
]:
    code, text = error_code(sm.update_endpoint_weights_and_capacities, **args)
    check(code == "ValidationException" and says in text, f"{args}: {code} {text}")

names = sorted(e["EndpointName"] for e in sm.list_endpoints()["Endpoints"])
check(names == ["iris", "iris:prod"], f"endpoints listed: {names}")
print(f"OK {checks} checks")
