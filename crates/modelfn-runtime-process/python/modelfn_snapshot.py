"""Snap start: an initialized Python function process becomes its version's template, and
new instances are forked from it instead of importing everything again.

modelfn starts the template like any instance, with MODELFN_SNAP (JSON: "fd", a unix
SOCK_SEQPACKET socket to modelfn; "prime"; "timeout_ms"), which modelfn_runtime takes
out of the environment before the function's code runs. Once the handler's module is
imported, the template
  1. runs the handler once on the saved event "prime" names, if any (priming);
  2. runs the before-snapshot hooks (snapshot_restore_py), in reverse order;
  3. refuses (b"F" + reason) when it is not fork-safe: threads still running, a failed
     hook or priming, and then serves as an ordinary instance; otherwise reports b"R"
     (ready) and waits.
Each request from modelfn is a JSON object of environment values and three descriptors
(SCM_RIGHTS): the instance's Runtime API connection, its stdout and its stderr. The
template forks; the child starts a session of its own, takes the descriptors, says
b"H<pid>" (the kernel attaches its credentials, which modelfn checks and uses to move it
into its own cgroup), closes the control socket, waits for modelfn's go byte, re-seeds
what randomness it can, runs the after-restore hooks and serves events. The template
reports each child's end as b"X<pid> <wait status>".

The template is its sandbox's pid 1 and is not dumpable, so the instances forked from it
can neither signal it (only the signals it handles reach a namespace's init, and it
ignores them while it waits) nor read or write its memory through /proc; each child
gets the handlers of the function's own code back, and is dumpable again.
"""
import array
import ctypes
import json
import os
import signal
import socket
import sys
import threading
import time

import modelfn_runtime as rt

MAX_REQUEST = 65536


def run_before_snapshot():
    import snapshot_restore_py as hooks

    registry = hooks.get_before_snapshot()
    while registry:
        func, args, kwargs = registry.pop()
        func(*args, **kwargs)


def run_after_restore():
    import snapshot_restore_py as hooks

    for func, args, kwargs in hooks.get_after_restore():
        func(*args, **kwargs)


def prime(snap, handler):
    path = snap.get("prime")
    if not path:
        return
    with open(path, "rb") as f:
        event = json.loads(f.read())
    deadline_ms = time.time() * 1000 + int(snap.get("timeout_ms") or 3000)
    handler(event, rt.LambdaContext("snap-start-prime", deadline_ms, None, None, None))


def prepare(snap, handler):
    """Primes and runs the before-snapshot hooks; returns why the process cannot be kept."""
    try:
        prime(snap, handler)
    except Exception as e:
        return "priming with the saved event raised %s: %s" % (type(e).__name__, e)
    try:
        run_before_snapshot()
    except Exception as e:
        return "a before-snapshot hook raised %s: %s" % (type(e).__name__, e)
    others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if others:
        return ("threads were still running at snapshot time (%s), and a fork keeps only one: "
                "stop them in a before-snapshot hook, or set snap_start = false" % ", ".join(others))
    return None


def reseed():
    """Instances must not share the template's random state (`random` re-seeds itself)."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        try:
            numpy.random.seed()
        except Exception:
            pass


def received_fds(ancdata):
    fds = array.array("i")
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    return list(fds)


PR_SET_NAME, PR_GET_NAME, PR_SET_DUMPABLE = 15, 16, 4


def prctl(option, arg):
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(option, arg, 0, 0, 0)
    except (OSError, AttributeError):
        return -1


def set_dumpable(on):
    prctl(PR_SET_DUMPABLE, 1 if on else 0)


def set_name(name):
    """The thread's name in `ps` and /proc/PID/status (at most 15 bytes)."""
    prctl(PR_SET_NAME, ctypes.c_char_p(name[:15]))


def get_name():
    buf = ctypes.create_string_buffer(16)
    prctl(PR_GET_NAME, buf)
    return buf.value


def shield():
    """Ignores every signal the function's code handles; returns the handlers to restore."""
    saved = {}
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
            continue
        try:
            handler = signal.getsignal(sig)
        except (ValueError, OSError):
            continue
        if handler not in (signal.SIG_DFL, signal.SIG_IGN, None):
            saved[sig] = handler
            signal.signal(sig, signal.SIG_IGN)
    return saved


def restore(ctl, fds, env, handler, saved):
    """In the forked child: becomes a new instance; never returns."""
    code = 1
    try:
        for sig, h in saved.items():
            signal.signal(sig, h)
        set_dumpable(True)
        os.setsid()
        api_fd, out_fd, err_fd = fds
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        os.close(out_fd)
        os.close(err_fd)
        ctl.send(b"H%d" % os.getpid())
        ctl.close()
        api = socket.socket(fileno=api_fd)
        api.set_inheritable(False)
        # Prepared ahead, it waits as "modelfn-spare" until an instance is needed.
        name = get_name()
        set_name(b"modelfn-spare")
        if api.recv(1) != b"G":  # modelfn has placed this process in its cgroup
            os._exit(1)
        set_name(name)
        os.environ.update(env)
        reseed()
        client = rt.RuntimeClient(sock=api)
        try:
            run_after_restore()
        except Exception as e:
            err = rt.error_body(e, "Runtime.AfterRestoreError")
            rt.log_error(err)
            client.init_error(err)
            os._exit(1)
        code = rt.serve(client, handler) or 0
    except BaseException as e:  # SystemExit from the handler included
        code = e.code if isinstance(e, SystemExit) and isinstance(e.code, int) else 1
        if not isinstance(e, SystemExit):
            rt.log_error(rt.error_body(e))
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def template(snap, client, handler):
    ctl = socket.socket(fileno=int(snap["fd"]))
    ctl.set_inheritable(False)
    reason = prepare(snap, handler)
    if reason is not None:
        # Initialized all the same: this process serves as an ordinary instance.
        sys.stderr.write("[WARN] snap start is off for this version: %s\n" % reason)
        ctl.send(b"F" + reason.encode("utf-8", "replace")[:4000])
        ctl.close()
        os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"] = "on-demand"
        return rt.serve(client, handler)
    sys.stdout.flush()
    sys.stderr.flush()

    children = set()

    def reap(*_):
        # As pid 1 the template also reaps orphans of its instances: only its own
        # children's ends are reported.
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in children:
                children.discard(pid)
                try:
                    ctl.send(b"X%d %d" % (pid, status))
                except OSError:
                    pass

    saved = shield()
    set_dumpable(False)
    signal.signal(signal.SIGCHLD, reap)
    ctl.send(b"R")
    while True:
        msg, ancdata, _, _ = ctl.recvmsg(MAX_REQUEST, socket.CMSG_SPACE(3 * 4))
        fds = received_fds(ancdata)
        if not msg:
            return 0  # modelfn closed its end
        try:
            env = json.loads(msg)
            ok = len(fds) == 3 and isinstance(env, dict)
        except ValueError:
            ok = False
        if not ok:
            for fd in fds:
                os.close(fd)
            continue
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGCHLD])
            restore(ctl, fds, {str(k): str(v) for k, v in env.items()}, handler, saved)
        children.add(pid)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGCHLD])
        for fd in fds:
            os.close(fd)
