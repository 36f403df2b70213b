# Snap start, exercised: runtime hooks, priming, per-instance state, and an instance
# attacking the template it was forked from (tests/snap_start.rs).
import os
import random
import signal
import time

from snapshot_restore_py import register_after_restore, register_before_snapshot

STATE = {"init_pid": os.getpid(), "before": 0, "after": 0, "primed": False, "events": 0}


@register_before_snapshot
def before():
    STATE["before"] += 1


def after(tag, times=1):
    STATE["after"] += times
    STATE["after_tag"] = tag


register_after_restore(after, "restored", times=1)


def attack():
    out = {}
    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGSTOP):
        try:
            os.kill(1, sig)
            out[sig.name] = "sent"
        except OSError as e:
            out[sig.name] = type(e).__name__
    for path in ("/proc/1/mem", "/proc/1/environ"):
        try:
            with open(path, "rb") as f:
                f.read(16)
            out[path] = "read"
        except OSError as e:
            out[path] = type(e).__name__
    return out


def handler(event, context):
    if event.get("prime"):
        STATE["primed"] = True
        return "primed"
    STATE["events"] += 1
    action = event.get("action")
    if action == "sleep":
        time.sleep(event["seconds"])
    elif action == "attack":
        return attack()
    elif action == "exit":
        os._exit(event.get("code", 3))
    return {
        "pid": os.getpid(),
        "init_pid": STATE["init_pid"],
        "before": STATE["before"],
        "after": STATE["after"],
        "after_tag": STATE.get("after_tag"),
        "primed": STATE["primed"],
        "events": STATE["events"],
        "rand": random.random(),
        "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
        "stream": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"],
    }
