"""boto3 with a function's own (leaked) access key. Usage: lambda_denied.py ENDPOINT KEY_ID SECRET DENIED ALLOWED

The key may invoke ALLOWED (granted by the function's [permissions]) and nothing else:
invoking DENIED, GetFunction and ListFunctions must raise AccessDeniedException.
"""
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, key_id, secret, denied, allowed = sys.argv[1:6]
lam = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key_id,
                   aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1, "mode": "standard"}))
for what, call in [("invoke " + denied, lambda: lam.invoke(FunctionName=denied, Payload=b"{}")),
                   ("GetFunction", lambda: lam.get_function(FunctionName=allowed)),
                   ("ListFunctions", lambda: lam.list_functions())]:
    try:
        call()
        print("FAILED: %s was allowed" % what)
        sys.exit(1)
    except ClientError as e:
        if e.response["Error"]["Code"] != "AccessDeniedException":
            print("FAILED: %s raised %s" % (what, e.response["Error"]["Code"]))
            sys.exit(1)
r = lam.invoke(FunctionName=allowed, Payload=b'{"action": "echo"}')
if r["StatusCode"] != 200:
    print("FAILED: invoking %s: %r" % (allowed, r))
    sys.exit(1)
print("OK")
