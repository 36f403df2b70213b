# A handler with one behaviour per event "action", for the end-to-end tests of the
# Runtime API path (run under modelfn's client and under awslambdaric alike).
import os
import sys
import time

SECRET_NAMES = ("MODELFN_TOKEN", "MODELFN_DATA_DIR", "MODELFN_SERVER")


def lambda_handler(event, context):
    action = event.get("action")
    if action == "context":
        return {
            "aws_request_id": context.aws_request_id,
            "function_name": context.function_name,
            "function_version": context.function_version,
            "memory_limit_in_mb": str(context.memory_limit_in_mb),
            "invoked_function_arn": context.invoked_function_arn,
            "log_group_name": context.log_group_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "event": event,
        }
    if action == "env":
        names = ["AWS_LAMBDA_RUNTIME_API", "_HANDLER", "LAMBDA_TASK_ROOT", "AWS_LAMBDA_FUNCTION_NAME",
                 "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_REGION", "TZ",
                 "AWS_ENDPOINT_URL", "GREETING"]
        return {
            "env": {n: os.environ.get(n) for n in names},
            "leaked": [n for n in os.environ if n.startswith("MODELFN_") and n != "MODELFN_LAYER_DIRS"],
            "all_values": list(os.environ.values()),
            "cwd": os.getcwd(),
            "uid": os.getuid(),
            "pid": os.getpid(),
            "code_writable": os.access(os.environ["LAMBDA_TASK_ROOT"], os.W_OK),
        }
    if action == "trace":
        return {"trace": os.environ.get("_X_AMZN_TRACE_ID")}
    if action == "print":
        for i in range(int(event.get("lines", 3))):
            print("line %d of %s" % (i, context.aws_request_id))
        sys.stderr.write("to stderr\n")
        return "printed"
    if action == "sleep":
        time.sleep(float(event["seconds"]))
        return "slept"
    if action == "raise":
        raise ValueError("boom: on purpose")
    if action == "needs":
        # Fails until the function is deployed with the GREETING the event wants.
        if os.environ.get("GREETING") != event["greeting"]:
            raise ValueError("not yet: GREETING is %s" % os.environ.get("GREETING"))
        return "fixed"
    if action == "alloc":
        hog = "x" * (int(event["mb"]) * 1024 * 1024)
        return len(hog)
    if action == "exit":
        os._exit(int(event.get("code", 7)))
    if action == "unserializable":
        return {1, 2, 3}
    if action == "nan":
        return {"x": float("nan")}
    return {"echo": event}
