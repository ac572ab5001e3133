"""The two exceptions the state layer raises, and the translation from redis-py's.

Callers handle exactly one "try again later" condition, :class:`StateUnavailable` (the API maps
it to 503 + Retry-After); anything else from Redis is a bug or a misconfiguration
(:class:`StateError`, a 500 worth a log line).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from redis import exceptions as rx

__all__ = ["StateError", "StateUnavailable", "translate_errors"]


class StateError(RuntimeError):
    """Redis answered, but not as the state layer expects (wrong server version, a script bug)."""


class StateUnavailable(StateError):
    """Redis cannot serve right now: unreachable, timed out, loading, out of memory, read-only.
    Retrying later may succeed; nothing was committed unless the caller's result says so."""


# Error replies that mean "the server is there but cannot take this now", not "your command is
# wrong". OOM comes from maxmemory-policy noeviction (the embedded server's policy); READONLY
# from a replica after a failover; BUSY from a script that runs too long.
_TRANSIENT_REPLIES = ("OOM", "READONLY", "MASTERDOWN", "LOADING", "BUSY", "TRYAGAIN",
                      "CLUSTERDOWN", "NOREPLICAS")


@contextlib.contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Re-raise redis-py errors raised inside the block as StateUnavailable / StateError."""
    try:
        yield
    except (rx.ConnectionError, rx.TimeoutError, OSError) as exc:
        # rx.BusyLoadingError is a ConnectionError subclass; OSError (incl. the builtin
        # ConnectionError/TimeoutError) covers socket errors some redis-py paths let through.
        raise StateUnavailable(f"Redis unavailable during {what}: {exc}") from exc
    except rx.ResponseError as exc:
        if str(exc).startswith(_TRANSIENT_REPLIES):
            raise StateUnavailable(f"Redis cannot serve {what} now: {exc}") from exc
        raise StateError(f"Redis rejected {what}: {exc}") from exc
    except rx.RedisError as exc:
        raise StateError(f"Redis error during {what}: {exc}") from exc
