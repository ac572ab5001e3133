"""The two exceptions the state layer raises, and the translation from the wire's.

Callers handle exactly one "try again later" condition, :class:`StateUnavailable` (the API maps
it to 503 + Retry-After); anything else from Redis is a bug or a misconfiguration
(:class:`StateError`, a 500 worth a log line).
"""

from __future__ import annotations

from types import TracebackType

from router.state.wire import ReplyError, Wire

__all__ = ["ReplicasBehind", "StateError", "StateUnavailable", "check_replicas", "check_reply",
           "confirm_replicas", "translate_errors"]


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


def check_reply(what: str, reply: object) -> None:
    """Raise the state exception for an inline error reply (from a batch)."""
    if isinstance(reply, ReplyError):
        raise _translate(what, reply) from reply


def _translate(what: str, exc: ReplyError) -> StateError:
    if str(exc).startswith(_TRANSIENT_REPLIES):
        return StateUnavailable(f"Redis cannot serve {what} now: {exc}")
    return StateError(f"Redis rejected {what}: {exc}")


class translate_errors:
    """Re-raise connection problems and error replies inside the block as state exceptions.

    ``with translate_errors("commit"): ...``. A class rather than a generator-based context
    manager: it wraps every Redis call, and this costs a fraction of a generator's set-up and
    tear-down on the hot path.
    """

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            return
        if isinstance(exc, OSError):
            # Refused, reset, lost or timed out (builtin ConnectionError and TimeoutError are
            # both OSError subclasses).
            raise StateUnavailable(f"Redis unavailable during {self.what}: {exc}") from exc
        if isinstance(exc, ReplyError):
            raise _translate(self.what, exc) from exc


class ReplicasBehind(StateUnavailable):
    """The commit is stored on the primary, but fewer replicas than asked confirmed it in time
    (LEADROUTER_REDIS_WAIT_REPLICAS): answered 503; a retry with the same key returns it."""


def check_replicas(acked: int, wanted: int, timeout_ms: int) -> None:
    """LEADROUTER_REDIS_WAIT_REPLICAS: a commit that fewer replicas than asked confirmed in
    time is stored on the primary but not acknowledged — "try again later" (503)."""
    if acked < wanted:
        raise ReplicasBehind(
            f"the commit reached {acked} of {wanted} replica(s) within {timeout_ms} ms "
            "(LEADROUTER_REDIS_WAIT_REPLICAS); it is stored on the primary — retry with the "
            "same Idempotency-Key to get it")


async def confirm_replicas(wire: Wire, replicas: int, timeout_ms: int) -> int:
    """WAIT after a commit (on the connection that wrote it); :class:`ReplicasBehind` when
    fewer than ``replicas`` confirm within ``timeout_ms``. Returns the round trips used (1)."""
    try:
        with translate_errors("commit (WAIT)"):
            acked = await wire.wait_replicas(replicas, timeout_ms)
    except StateUnavailable as exc:  # the commit is in: say so, not "nothing was written"
        raise ReplicasBehind(f"{exc}; the commit is stored on the primary — retry with the "
                             "same Idempotency-Key to get it") from exc
    check_replicas(acked, replicas, timeout_ms)
    return 1
