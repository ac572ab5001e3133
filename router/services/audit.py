"""The audit log: who changed what and when (``GET /v1/admin/audit``, the console's Audit page).

The services that change things record here, each given the :class:`Actor` the API layer
verified (router/api/auth.py): rules reloads (router/services/rules_watch.py), rep status and
account owners (directory.py), API keys (keys.py), erasures (privacy.py). An entry never holds
a secret (keys by id only) nor erased data (an erasure's counts and its erasure-log id only).

**A failed audit write never fails the change.** The change is made first; if its entry cannot
be written (Redis went away in between) the entry is logged in full at ERROR on
``leadrouter.audit`` and counted (``leadrouter_redis_errors_total{operation="audit_record"}``)
— answering 503 for a change that did happen would make clients retry a change already made.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import logging
from typing import Any, Final

import msgspec

from router.observability import metrics
from router.services.clock import Clock
from router.state.audit import Actor, AuditEntry, append, read_range
from router.state.errors import StateError, StateUnavailable
from router.state.store import Store

__all__ = ["ACTIONS", "Actor", "AuditEntry", "AuditLog", "AuditPage", "BadCursor"]

log = logging.getLogger("leadrouter.audit")

ACTIONS: Final = ("rules.reload.accepted", "rules.reload.rejected", "rep.status",
                  "account.owner", "account.import", "apikey.created", "apikey.rotated",
                  "apikey.revoked", "lead.erased", "console.signin", "console.signin_failed",
                  "console.signout")

_CHUNK = 200  # entries read per XREVRANGE while filtering
_SCAN_LIMIT = 5000  # entries looked at per page at most: a rare filter pages on, never stalls


class BadCursor(ValueError):
    """A cursor this query did not hand out (forged, damaged, or from other filters)."""


class AuditPage(msgspec.Struct, kw_only=True):
    entries: list[AuditEntry]
    next_cursor: str | None = None


class _Cursor(msgspec.Struct, array_like=True):
    last: str  # the id of the last entry looked at: the next page starts below it
    query: str  # a digest of the filters it belongs to


class AuditLog:
    """Append and query the audit log of one store; kept ``retention_s`` seconds."""

    def __init__(self, *, store: Store, clock: Clock, retention_s: int) -> None:
        self.store = store
        self.clock = clock
        self.retention_ms = retention_s * 1000
        self._failed = metrics.REDIS_ERRORS.labels("audit_record", "unavailable")
        self._broken = metrics.REDIS_ERRORS.labels("audit_record", "error")

    async def record(self, actor: Actor, action: str, target: str,
                     details: dict[str, Any] | None = None, *,
                     claim: str | None = None) -> str | None:
        """Append one entry (after the change it describes was made): its id; None when
        ``claim`` was taken by another worker, or the write failed (logged and counted, never
        raised: the change stands)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")  # a bug, not bad input
        try:
            return await append(self.store, at_ms=self.clock.ms(), actor=actor, action=action,
                                target=target, details=details or {},
                                retention_ms=self.retention_ms, claim=claim)
        except StateError as exc:
            (self._failed if isinstance(exc, StateUnavailable) else self._broken).inc()
            log.error("audit entry not written: %s", exc,
                      extra={"actor": str(actor), "action": action, "target": target,
                             "details": details or {}})
            return None

    async def query(self, *, since: dt.datetime | None = None, until: dt.datetime | None = None,
                    actor: str | None = None, action: str | None = None,
                    target: str | None = None, limit: int = 50,
                    cursor: str | None = None) -> AuditPage:
        """Entries newest first, filtered (``actor``/``action``/``target``: exact), at most
        ``limit``; ``next_cursor`` continues below the last one. Entries older than the
        retention are never answered, trimmed yet or not. Raises :class:`BadCursor`."""
        if action is not None and action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        query = _digest(since, until, actor, action, target)
        oldest_ms = self.clock.ms() - self.retention_ms
        if since is not None:
            oldest_ms = max(oldest_ms, _ms(since))
        newest = "+" if until is None else str(_ms(until))
        if cursor is not None:
            newest = "(" + _decode_cursor(cursor, query)
        wanted = {k: v for k, v in (("actor", actor), ("action", action), ("target", target))
                  if v is not None}
        # Unfiltered, one more than a page tells whether there is a next one; filtered, a
        # full page may have more below it (an empty last page is possible).
        count = _CHUNK if wanted else limit + 1
        found: list[AuditEntry] = []
        scanned, more = 0, False
        last = ""
        while True:
            rows = await read_range(self.store, newest=newest, oldest=str(max(0, oldest_ms)),
                                    count=count)
            for entry in rows:
                if len(found) == limit:
                    more = True  # a row beyond the page
                    break
                scanned += 1
                last = entry.id
                if all(getattr(entry, k) == v for k, v in wanted.items()):
                    found.append(entry)
            if len(found) == limit:
                more = more or bool(wanted) or len(rows) == count
                break
            # a rare filter: after _SCAN_LIMIT entries, answer what was found so far
            if len(rows) == count and scanned >= _SCAN_LIMIT:
                more = True
                break
            if len(rows) < count:
                break
            newest = "(" + last
        next_cursor = _encode_cursor(last, query) if more else None
        return AuditPage(entries=found, next_cursor=next_cursor)


def _ms(when: dt.datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0, int(when.timestamp() * 1000))


def _digest(*parts: object) -> str:
    text = "\x1f".join("" if p is None else str(_ms(p) if isinstance(p, dt.datetime) else p)
                       for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _encode_cursor(last: str, query: str) -> str:
    raw = msgspec.json.encode(_Cursor(last=last, query=query))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_cursor(cursor: str, query: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = msgspec.json.decode(raw, type=_Cursor)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise BadCursor("the cursor is not one this endpoint handed out") from None
    ms, dash, seq = decoded.last.partition("-")
    if not (ms.isdigit() and dash and seq.isdigit()):
        raise BadCursor("the cursor is not one this endpoint handed out")
    if decoded.query != query:
        raise BadCursor("the cursor belongs to a query with other filters")
    return decoded.last
