"""Runtime hooks for snap start, with the interface of AWS Lambda's `snapshot_restore_py`,
so that code written for SnapStart runs unchanged on modelfn.

    from snapshot_restore_py import register_before_snapshot, register_after_restore

    @register_before_snapshot
    def close_connections(): ...

    register_after_restore(reconnect, "db", retries=3)

Before-snapshot hooks run in the reverse order of their registration, after-restore hooks
in their order, as on Lambda. A function whose package ships the PyPI package of the same
name uses that one (it comes first on the path); modelfn's runner reads either.
"""

_before_snapshot_registry = []
_after_restore_registry = []


def register_before_snapshot(func, *args, **kwargs):
    """Runs `func(*args, **kwargs)` in the template, just before it is kept."""
    _before_snapshot_registry.append((func, args, kwargs))
    return func


def register_after_restore(func, *args, **kwargs):
    """Runs `func(*args, **kwargs)` in each new instance, before its first event."""
    _after_restore_registry.append((func, args, kwargs))
    return func


def get_before_snapshot():
    return _before_snapshot_registry


def get_after_restore():
    return _after_restore_registry
