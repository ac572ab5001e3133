"""The audit log in Redis: one stream (``Keys.audit``), append-only, trimmed by age.

Each entry is who (:class:`Actor`), what (an action name), on what (a target) and a small JSON
of details; its stream id is the app clock's milliseconds, so a time range is an id range
(``XREVRANGE``) and retention is ``MINID``: every append drops what is older than the retention
and refreshes the stream's TTL to it (a log nobody writes to for that long is all expired).

Some events happen in every worker at once (a rules file change: each worker's watcher reloads
it); :func:`append` with a ``claim`` records such an event once — the first worker to ``SET NX``
the claim's key writes the entry, the others find it taken and write nothing.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import msgspec

from router.state.errors import check_reply, translate_errors
from router.state.store import Store
from router.state.wire import ReplyError

__all__ = ["Actor", "ActorKind", "AuditEntry", "Recorder", "append", "read_range"]

ActorKind = Literal["admin-token", "key", "rules-watcher", "console", "anonymous"]

_CLAIM_TTL_S = 86400


class Actor(msgspec.Struct, frozen=True):
    """Who made a change: the admin token, an API key (by id), the rules watcher, or a console
    session (signed in with the admin token or a key); ``anonymous`` for a failed console
    sign-in (no credential was verified). Built by the API layer from the credential it
    verified (router/api/auth.py), never from what a request claims."""

    kind: ActorKind
    id: str = ""

    def __str__(self) -> str:
        if self.kind == "key":
            return f"key:{self.id}"
        if self.kind == "console":
            return f"console:{self.id}"
        return self.kind

    @property
    def credential(self) -> str:
        """The credential alone: ``admin-token`` or the key id (the erasure log's ``by``)."""
        return self.id if self.kind in ("key", "console") else self.kind


class AuditEntry(msgspec.Struct, kw_only=True):
    id: str  # the stream id: "<ms>-<seq>"
    at: int  # ms since the epoch
    actor: str
    action: str
    target: str
    details: dict[str, Any] = {}


class Recorder(Protocol):
    """What a service that changes things is given to record it (``AuditLog.record``, bound by
    the app: services never call each other directly)."""

    async def __call__(self, actor: Actor, action: str, target: str,
                       details: dict[str, Any] | None = None, *,
                       claim: str | None = None) -> str | None: ...


_encode = msgspec.json.Encoder().encode
_decode_details = msgspec.json.Decoder(dict[str, Any]).decode


async def append(store: Store, *, at_ms: int, actor: Actor, action: str, target: str,
                 details: dict[str, Any], retention_ms: int,
                 claim: str | None = None) -> str | None:
    """Append one entry; its id, or None when ``claim`` was already taken (another worker
    recorded the same event)."""
    k = store.keys
    if claim is not None:
        with translate_errors("audit claim"):
            store._count(1)
            won = await store.wire.call("SET", k.audit_claim(claim), str(actor), "NX",
                                        "EX", _CLAIM_TTL_S)
        if won is None:
            return None
    fields = ("at", at_ms, "actor", str(actor), "action", action, "target", target,
              "details", _encode(details))
    trim = ("MINID", max(0, at_ms - retention_ms))
    with translate_errors("audit append"):
        store._count(1)
        replies = await store.wire.batch([
            ("XADD", k.audit, *trim, f"{at_ms}-*", *fields),
            ("PEXPIRE", k.audit, retention_ms)])
    added, _ = replies
    if isinstance(added, ReplyError) and "equal or smaller" in str(added):
        # Another worker's clock ran ahead of ours: take the server's next id instead.
        with translate_errors("audit append"):
            store._count(1)
            added = await store.wire.call("XADD", k.audit, *trim, "*", *fields)
    check_reply("audit append", added)
    for reply in replies[1:]:
        check_reply("audit append", reply)
    return added.decode() if isinstance(added, bytes) else str(added)


def _entry(entry_id: bytes, raw: list[bytes]) -> AuditEntry:
    fields = {raw[i].decode(): raw[i + 1] for i in range(0, len(raw) - 1, 2)}
    try:
        details = _decode_details(fields.get("details", b"{}"))
    except msgspec.DecodeError:
        details = {}
    return AuditEntry(id=entry_id.decode(), at=int(fields.get("at", b"0")),
                      actor=fields.get("actor", b"").decode(),
                      action=fields.get("action", b"").decode(),
                      target=fields.get("target", b"").decode(), details=details)


async def read_range(store: Store, *, newest: str, oldest: str, count: int
                     ) -> list[AuditEntry]:
    """Up to ``count`` entries from ``newest`` down to ``oldest`` (stream id bounds: ``+``,
    ``-``, ``<ms>``, or ``(<id>`` for an exclusive bound), newest first."""
    with translate_errors("audit read"):
        store._count(1)
        rows = await store.wire.call("XREVRANGE", store.keys.audit, newest, oldest,
                                     "COUNT", count)
    return [_entry(entry_id, raw) for entry_id, raw in rows]
