"""Reading the outbox stream for plugin sinks: consumer groups, acks, retries, dead letters.

The commit and transition scripts ``XADD`` one entry per lead event to ``outbox`` (bounded by
``MAXLEN ~``). Each sink (a plugin implementing ``on_event``) reads it through **its own
consumer group** ``sink:<plugin>``, so sinks acknowledge independently and a slow or broken one
never holds the others back. Delivery is at least once:

* ``XREADGROUP ... >`` hands new entries to this process' consumer; they stay in the group's
  pending entries list (PEL) until ``XACK``, which the dispatcher sends only once the sink
  returned. A crash, a restart or a failed delivery leaves them pending.
* ``XPENDING ... IDLE`` lists pending entries with their idle time and delivery count; the
  dispatcher retries one once it has been idle for its backoff (which grows with the count,
  and is never shorter than a delivery's time budget, so an entry still being delivered by
  another worker is not taken from it). ``XCLAIM`` with that same minimum idle time takes it
  over atomically, so of several workers exactly one retries it, and an entry whose consumer
  died (its process was killed) is picked up by another process or by the next start.
* after ``max_attempts`` deliveries, or at once when the sink refused it for good
  (``PermanentDeliveryError``), an entry is copied to the dead-letter stream ``outbox:dead``
  (bounded) with the sink, the attempts, the last error (the sink's reason) and ``permanent``
  (``1`` when refused, ``0`` when out of attempts), and acked, in one ``MULTI``.

:meth:`OutboxEntry.event` lifts what a receiver needs to find the lead in its own system out of
the stored decision the entry carries (``external_id``, ``email``, ``source``): the event alone
is enough, in any worker, after any restart.

A new group starts at the end of the stream (``$``): installing a sink does not replay history.
Entries trimmed away by ``MAXLEN`` before a sink read them are lost to that sink: the outbox
holds ``outbox_maxlen`` events (``LEADROUTER_OUTBOX_MAXLEN``, 100 000 by default) for sinks that
are down.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import msgspec
from leadrouter_sdk import Event

from router.state.errors import StateError, check_reply, translate_errors
from router.state.models import from_ms
from router.state.store import Store

__all__ = ["GroupStats", "Outbox", "OutboxEntry", "Pending"]

_JSON_FIELDS = ("decision", "entry")
_MS_FIELDS = ("due_at",)


class OutboxEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    fields: dict[str, str]

    def event(self, attempt: int = 1) -> Event:
        """The entry as the ``Event`` sinks receive (JSON fields decoded, times as UTC)."""
        f = self.fields
        data: dict[str, Any] = {}
        for key, value in f.items():
            if key in ("type", "lead_id", "at") or value == "":
                continue
            if key in _JSON_FIELDS:
                try:
                    data[key] = msgspec.json.decode(value)
                except msgspec.DecodeError:
                    data[key] = value
            elif key in _MS_FIELDS and value.lstrip("-").isdigit():
                data[key] = from_ms(value)
            else:
                data[key] = value
        _lift_lead_keys(data)
        at = f.get("at", "")
        when = from_ms(at) if at.isdigit() else from_ms(self.id.split("-", 1)[0])
        return Event(id=self.id, type=f.get("type", ""), lead_id=f.get("lead_id", ""), at=when,
                     attempt=attempt, data=data)


def _lift_lead_keys(data: dict[str, Any]) -> None:
    """``external_id``, ``email`` (from the decision's lead) and ``source`` (the intake) at the
    top of ``data``, unless the entry has them itself. Nothing new is stored: the outbox entry
    already carries the decision, lead included (and erasure deletes the lead's entries)."""
    record = data.get("decision")
    if not isinstance(record, dict):
        return
    lead = record.get("lead")
    if isinstance(lead, dict):
        for key in ("external_id", "email"):
            value = lead.get(key)
            if isinstance(value, str) and value:
                data.setdefault(key, value)
    source = record.get("source")
    if isinstance(source, str) and source:
        data.setdefault("source", source)


class Pending(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    consumer: str
    idle_ms: int
    deliveries: int


class GroupStats(msgspec.Struct, frozen=True, kw_only=True):
    group: str
    pending: int
    lag: int | None  # entries not yet read by the group (None: unknown, e.g. after trimming)
    consumers: int


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entries(raw: Any) -> list[OutboxEntry]:
    out = []
    for item in raw or ():
        if item is None or item[1] is None:  # an id whose entry was trimmed away
            continue
        entry_id, flat = item
        fields = {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}
        out.append(OutboxEntry(id=_text(entry_id), fields=fields))
    return out


class Outbox:
    """Consumer-group operations on one store's outbox stream, for one sink group each call."""

    def __init__(self, store: Store, *, dead_maxlen: int = 10_000) -> None:
        self.store = store
        self.key = store.keys.outbox
        self.dead_key = store.keys.outbox_dead
        self.dead_maxlen = dead_maxlen

    async def _call(self, what: str, *args: Any) -> Any:
        with translate_errors(what):
            self.store.round_trips += 1
            return await self.store.wire.call(*args)

    async def ensure_group(self, group: str) -> bool:
        """Create ``group`` at the end of the stream (and the stream) unless it exists;
        True when it was created now."""
        try:
            await self._call("outbox group", "XGROUP", "CREATE", self.key, group, "$",
                             "MKSTREAM")
        except StateError as exc:
            if "BUSYGROUP" in str(exc):
                return False
            raise
        return True

    async def read_new(self, group: str, consumer: str, count: int) -> list[OutboxEntry]:
        """Entries no consumer of ``group`` has read yet (now pending for ``consumer``)."""
        reply = await self._call("outbox read", "XREADGROUP", "GROUP", group, consumer,
                                 "COUNT", count, "STREAMS", self.key, ">")
        if not reply:
            return []
        # RESP2: [[stream, [[id, [f, v, ...]], ...]]]
        return _entries(reply[0][1])

    async def due(self, group: str, *, min_idle_ms: int, count: int) -> list[Pending]:
        """Pending entries of ``group`` (any consumer) idle for at least ``min_idle_ms``."""
        reply = await self._call("outbox pending", "XPENDING", self.key, group, "IDLE",
                                 max(0, int(min_idle_ms)), "-", "+", count)
        return [Pending(id=_text(i), consumer=_text(c), idle_ms=int(idle), deliveries=int(n))
                for i, c, idle, n in reply or ()]

    async def claim(self, group: str, consumer: str, ids: Sequence[str],
                    min_idle_ms: int) -> list[OutboxEntry]:
        """Take over ``ids`` if they are still idle for ``min_idle_ms`` (another worker may have
        just taken them: those are not returned). Counts a delivery for each returned one.
        Entries trimmed from the stream are dropped from the PEL by the server."""
        if not ids:
            return []
        reply = await self._call("outbox claim", "XCLAIM", self.key, group, consumer,
                                 max(0, int(min_idle_ms)), *ids)
        return _entries(reply)

    async def ack(self, group: str, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        return int(await self._call("outbox ack", "XACK", self.key, group, *ids))

    async def dead_letter(self, group: str, entry: OutboxEntry, *, attempts: int,
                          error: str, now: dt.datetime, permanent: bool = False) -> None:
        """Copy ``entry`` to the dead-letter stream and ack it, atomically. ``permanent``:
        the sink refused it for good (else it ran out of attempts)."""
        flat: list[Any] = []
        for key, value in entry.fields.items():
            flat += (key, value)
        flat += ("outbox_id", entry.id, "sink", group, "attempts", attempts,
                 "error", error[:1000], "permanent", int(permanent),
                 "dead_at", int(now.timestamp() * 1000))
        with translate_errors("outbox dead letter"):
            self.store.round_trips += 1
            replies = await self.store.wire.batch([
                ("MULTI",),
                ("XADD", self.dead_key, "MAXLEN", "~", self.dead_maxlen, "*", *flat),
                ("XACK", self.key, group, entry.id),
                ("EXEC",)])
        for reply in replies:
            check_reply("outbox dead letter", reply)

    async def dead_letters(self, count: int = 100) -> list[OutboxEntry]:
        """The most recent dead letters, newest first (for operators and tests)."""
        return _entries(await self._call("outbox dead letters", "XREVRANGE", self.dead_key,
                                         "+", "-", "COUNT", count))

    async def stats(self, group: str) -> GroupStats | None:
        reply = await self._call("outbox stats", "XINFO", "GROUPS", self.key)
        for flat in reply or ():
            info = {_text(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}
            if _text(info.get("name", b"")) == group:
                lag = info.get("lag")
                return GroupStats(group=group, pending=int(info.get("pending", 0)),
                                  lag=None if lag is None else int(lag),
                                  consumers=int(info.get("consumers", 0)))
        return None

    async def prune_consumers(self, group: str, *, idle_ms: int) -> int:
        """Delete consumers of ``group`` with nothing pending, idle for ``idle_ms`` (each
        process start adds one); returns how many."""
        try:
            reply = await self._call("outbox consumers", "XINFO", "CONSUMERS", self.key, group)
        except StateError:
            return 0
        removed = 0
        for flat in reply or ():
            info = {_text(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}
            if int(info.get("pending", 1)) == 0 and int(info.get("idle", 0)) >= idle_ms:
                await self._call("outbox consumers", "XGROUP", "DELCONSUMER", self.key, group,
                                 _text(info["name"]))
                removed += 1
        return removed
