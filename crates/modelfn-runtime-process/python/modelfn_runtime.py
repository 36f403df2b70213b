"""modelfn's Lambda Runtime API client for Python handlers (standard library only).

Usage: python3 -u modelfn_runtime.py module.function

It imports the handler from LAMBDA_TASK_ROOT, then loops: GET the next event from
AWS_LAMBDA_RUNTIME_API, call handler(event, context), POST the result (or the error in
Lambda's format). An import failure is posted to /runtime/init/error and the process
exits with status 1, as awslambdaric does. With MODELFN_SNAP set, the initialized
process becomes its version's snap-start template instead (modelfn_snapshot.py).
"""
import http.client
import importlib
import json
import os
import sys
import time
import traceback

API_PREFIX = "/2018-06-01/runtime"


class LambdaContext:
    """The `context` argument, with the attributes and method Lambda handlers use."""

    def __init__(self, request_id, deadline_ms, invoked_function_arn, client_context, identity):
        self.aws_request_id = request_id
        self._deadline_ms = deadline_ms
        self.invoked_function_arn = invoked_function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.client_context = client_context
        self.identity = identity

    def get_remaining_time_in_millis(self):
        return max(0, int(self._deadline_ms - time.time() * 1000))

    def __repr__(self):
        return "LambdaContext(aws_request_id=%r, function_name=%r)" % (self.aws_request_id, self.function_name)


class _GivenSocket(http.client.HTTPConnection):
    """One HTTP connection over a socket modelfn handed over (a restored instance's)."""

    def __init__(self, sock):
        super().__init__("localhost")
        self._given = sock

    def connect(self):
        if self._given is None:
            raise ConnectionError("the Runtime API connection of this instance is closed")
        self.sock, self._given = self._given, None


class RuntimeClient:
    def __init__(self, address=None, sock=None):
        if sock is not None:
            self.conn = _GivenSocket(sock)
            return
        host, _, port = address.rpartition(":")
        self.conn = http.client.HTTPConnection(host, int(port))

    def _request(self, method, path, body=None, headers=None):
        self.conn.request(method, API_PREFIX + path, body=body, headers=headers or {})
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status >= 300:
            raise RuntimeError("Runtime API %s %s answered %d: %s" % (method, path, resp.status, data[:200]))
        return resp, data

    def next(self):
        resp, body = self._request("GET", "/invocation/next")
        return resp.headers, body

    def respond(self, request_id, payload, content_type):
        self._request("POST", "/invocation/%s/response" % request_id, payload, {"Content-Type": content_type})

    def error(self, request_id, err):
        self._request("POST", "/invocation/%s/error" % request_id, json.dumps(err).encode(),
                      {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": err["errorType"]})

    def init_error(self, err):
        self._request("POST", "/init/error", json.dumps(err).encode(),
                      {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": err["errorType"]})


def error_body(exc, error_type=None, request_id=""):
    tb = traceback.extract_tb(exc.__traceback__)
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(tb),
    }


def log_error(err):
    sys.stderr.write("[ERROR] %s: %s\n" % (err["errorType"], err["errorMessage"]))
    if err.get("stackTrace"):
        sys.stderr.write("Traceback (most recent call last):\n" + "".join(err["stackTrace"]))
    sys.stderr.flush()


def load_handler(spec):
    module_name, _, function_name = spec.rpartition(".")
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as e:
        return None, error_body(e, "Runtime.UserCodeSyntaxError")
    except ImportError as e:
        err = error_body(e, "Runtime.ImportModuleError")
        err["errorMessage"] = "Unable to import module '%s': %s" % (module_name, e)
        return None, err
    except Exception as e:  # the module's own top-level code raised
        return None, error_body(e, "Runtime.ImportModuleError")
    handler = getattr(module, function_name, None)
    if handler is None:
        return None, {"errorMessage": "Handler '%s' missing on module '%s'" % (function_name, module_name),
                      "errorType": "Runtime.HandlerNotFound", "requestId": "", "stackTrace": []}
    return handler, None


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: modelfn_runtime.py module.function\n")
        return 2
    snap = os.environ.pop("MODELFN_SNAP", None)  # never seen by the function's code
    client = RuntimeClient(os.environ["AWS_LAMBDA_RUNTIME_API"])
    task_root = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    if task_root not in sys.path:
        sys.path.insert(0, task_root)
    handler, err = load_handler(sys.argv[1])
    if err is not None:
        log_error(err)
        client.init_error(err)
        return 1
    if snap is not None:
        import modelfn_snapshot  # beside this file in /var/runtime
        return modelfn_snapshot.template(json.loads(snap), client, handler)
    return serve(client, handler)


def serve(client, handler):
    """Runs events through the handler, one at a time, until the process is stopped."""
    while True:
        headers, body = client.next()
        request_id = headers.get("Lambda-Runtime-Aws-Request-Id", "")
        trace_id = headers.get("Lambda-Runtime-Trace-Id")
        if trace_id:
            os.environ["_X_AMZN_TRACE_ID"] = trace_id
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        try:
            client_context = json.loads(headers["Lambda-Runtime-Client-Context"]) if headers.get("Lambda-Runtime-Client-Context") else None
            identity = json.loads(headers["Lambda-Runtime-Cognito-Identity"]) if headers.get("Lambda-Runtime-Cognito-Identity") else None
            content_type = headers.get("Content-Type", "")
            event = json.loads(body) if content_type.startswith("application/json") else body
        except Exception as e:  # ValueError, and RecursionError for deeply nested input
            e = ValueError("the event is not valid JSON: %s" % type(e).__name__)
            err = error_body(e, "Runtime.UnmarshalError", request_id)
            log_error(err)
            client.error(request_id, err)
            continue
        context = LambdaContext(request_id, int(headers.get("Lambda-Runtime-Deadline-Ms", "0")),
                                headers.get("Lambda-Runtime-Invoked-Function-Arn"), client_context, identity)
        try:
            result = handler(event, context)
        except Exception as e:
            err = error_body(e, None, request_id)
            log_error(err)
            client.error(request_id, err)
            continue
        if isinstance(result, (bytes, bytearray)):
            client.respond(request_id, bytes(result), "application/octet-stream")
            continue
        try:
            payload = json.dumps(result, allow_nan=False).encode()  # NaN is not JSON
        except (TypeError, ValueError, RecursionError) as e:
            err = {"errorMessage": "Unable to marshal response: %s" % e, "errorType": "Runtime.MarshalError",
                   "requestId": request_id, "stackTrace": []}
            log_error(err)
            client.error(request_id, err)
            continue
        client.respond(request_id, payload, "application/json")


if __name__ == "__main__":
    sys.exit(main())
