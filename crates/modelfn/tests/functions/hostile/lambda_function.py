# An attacker's function, for the isolation tests: each action tries one way out of its
# sandbox and reports what happened, so that the test can assert that it failed.
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)


def errno_of(rc):
    return ctypes.get_errno() if rc != 0 else 0


def outcome(f):
    try:
        return f()
    except Exception as e:  # the test reads the exception's name
        return type(e).__name__


class IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def vm_read(pid):
    """Reads 8 bytes of another process's memory; answers the syscall's result."""
    buf = ctypes.create_string_buffer(8)
    local = IoVec(ctypes.cast(buf, ctypes.c_void_p), 8)
    remote = IoVec(0x400000, 8)
    return -1 if libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) < 0 else 0


def read_start(path):
    with open(path, "rb") as f:
        return f.read(16).decode("latin-1")


def probe(event):
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    secret = event.get("secret", "").encode()
    seen = []
    for p in pids:
        try:
            with open("/proc/%d/environ" % p, "rb") as f:
                if secret and secret in f.read():
                    seen.append(p)
        except OSError:
            pass
    connect = {}
    for port in event.get("ports", []):
        s = socket.socket()
        s.settimeout(1)
        connect[str(port)] = outcome(lambda: s.connect(("127.0.0.1", port)) or "connected")
        s.close()
    return {
        "uid": os.getuid(),
        "pids": pids,
        "secret_seen_in": seen,
        "paths": {p: outcome(lambda: read_start(p) and "read") for p in event.get("paths", [])},
        "connect": connect,
        "ptrace": errno_of(libc.ptrace(16, 1, 0, 0)),  # PTRACE_ATTACH to the sandbox's pid 1
        "unshare_user": errno_of(libc.unshare(0x10000000)),  # CLONE_NEWUSER
        "mount": errno_of(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)),
        "process_vm_readv": errno_of(vm_read(1)),
        "status": {k: v.strip() for k, v in (l.split(":", 1) for l in open("/proc/self/status"))
                   if k in ("NoNewPrivs", "Seccomp", "CapEff", "CapBnd")},
        "kill_all": outcome(lambda: os.kill(-1, signal.SIGKILL) or "sent"),
        "tmp": sorted(os.listdir("/tmp")),
        "dev_shm": outcome(lambda: open("/dev/shm/hostile", "w").write("x") and "written"),
        "root": sorted(os.listdir("/")),
        "key": [os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")],
    }


def fill_tmp(event):
    written = 0
    chunk = b"x" * (1 << 20)
    try:
        with open("/tmp/fill", "wb") as f:
            while written < int(event.get("max_mb", 100000)):
                f.write(chunk)
                f.flush()
                written += 1
        return {"written_mb": written, "errno": 0}
    except OSError as e:
        return {"written_mb": written, "errno": e.errno}
    finally:
        try:
            os.remove("/tmp/fill")
        except OSError:
            pass


def fork_many(event):
    kids, failed = [], 0
    for _ in range(int(event["n"])):
        try:
            pid = os.fork()
        except OSError:
            failed += 1
            continue
        if pid == 0:
            try:
                os.execv("/bin/sleep", ["sleep", "60"])
            finally:
                os._exit(0)
        kids.append(pid)
    for k in kids:
        os.kill(k, signal.SIGKILL)
    for k in kids:
        os.waitpid(k, 0)
    return {"started": len(kids), "failed": failed}


def call(event):
    """POSTs to this modelfn (AWS_ENDPOINT_URL) as the function; answers the status."""
    import urllib.error
    import urllib.request
    req = urllib.request.Request(os.environ["AWS_ENDPOINT_URL"] + event["path"], method=event.get("method", "POST"),
                                 data=b"{}" if event.get("method", "POST") == "POST" else None,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return {"status": r.status, "body": r.read().decode()}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read().decode()}


def lambda_handler(event, context):
    action = event.get("action")
    if action == "call":
        return call(event)
    if action == "probe":
        return probe(event)
    if action == "fill_tmp":
        return fill_tmp(event)
    if action == "fork":
        return fork_many(event)
    if action == "setsid":
        subprocess.Popen(["setsid", "sleep", str(event["seconds"])], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return "started"
    if action == "remember":
        with open("/tmp/secret-of-" + context.function_name, "w") as f:
            f.write(event["secret"])
        return "remembered"
    if action == "spew":
        chunk = "x" * (1 << 20)
        for _ in range(int(event["mb"])):
            sys.stdout.write(chunk)
        sys.stdout.write("\n")  # one line of it all
        sys.stdout.flush()
        return "spewed"
    return {"echo": event}
