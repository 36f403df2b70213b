# A destination for the asynchronous-invocation tests: prints each record it is given
# on one AUDIT line.
import json


def lambda_handler(event, context):
    print("AUDIT " + json.dumps(event))
    return "audited"
