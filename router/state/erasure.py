"""Right to erasure: remove every record of a person's leads, keep only the fact of it.

The commit script adds each lead to ``person:<sha256 of the email>`` (a set of lead ids with
the leads' retention), so a person's leads are found without scanning. Erasing a lead removes
its decision (with the input it was made from), history, idempotency record of its external
id, its places in queues, open sets, the SLA schedule, the arrival index (replays) and the
list indexes (lists.py), and its events in the outbox streams; then a ``lead.erased`` event
(id only) tells the sinks to erase downstream, and ``{erasures}`` records when and how much
was erased — never who.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import msgspec

from router.state.errors import check_reply, translate_errors
from router.state.lists import index_members
from router.state.store import Store
from router.state.wire import Arg

__all__ = ["Erasure", "ErasureLog", "erase_leads", "erasure_log", "lead_ids_of", "person_hash"]

_ERASURE_MAXLEN = 100_000
_SCAN_CHUNK = 500


def person_hash(email: str) -> str:
    """The key of a person in the index: sha256 of the normalised email."""
    return hashlib.sha256(b"leadrouter-person:" + email.strip().lower().encode()).hexdigest()


class _Stored(msgspec.Struct):
    source: str | None = None
    lead: dict[str, Any] = {}


_decode_record = msgspec.json.Decoder(_Stored).decode


class Erasure(msgspec.Struct, kw_only=True):
    id: str
    at: int  # ms
    kind: str  # "lead" | "person"
    leads: int
    events: int
    outbox_entries: int
    by: str


class ErasureLog(msgspec.Struct, kw_only=True):
    erasures: list[Erasure]


async def lead_ids_of(store: Store, email: str) -> list[str]:
    with translate_errors("person lookup"):
        store._count(1)
        members = await store.wire.call("SMEMBERS", store.keys.person(person_hash(email)))
    return sorted(m.decode() for m in members)


def _lead_ms(lead_id: str) -> int | None:
    try:
        return int(lead_id[3:15], 16)
    except ValueError:
        return None


async def erase_leads(store: Store, lead_ids: Sequence[str], *, now_ms: int, kind: str,
                      by: str, email: str | None = None, events: int = 0) -> Erasure:
    """Erase ``lead_ids``; returns the log entry. With ``email`` (a person's erasure) the
    person's index goes too; else each lead leaves the index of the email it carries."""
    k = store.keys
    ids = sorted(set(lead_ids))
    stored: list[Any] = []
    if ids:
        with translate_errors("erasure read"):
            store._count(1)
            stored = await store.wire.batch(
                [("HMGET", k.lead(i), "owner", "queue", "decision", "lx") for i in ids])
    commands: list[tuple[Arg, ...]] = [("MULTI",)]
    found = 0
    for lead_id, reply in zip(ids, stored, strict=True):
        check_reply("erasure read", reply)
        owner, queue, decision, lx = reply
        if decision is not None:
            found += 1
        commands += [("DEL", k.lead(lead_id), k.history(lead_id)),
                     ("ZREM", k.sla_due, lead_id), ("ZREM", k.arrivals, lead_id)]
        if owner:
            commands.append(("ZREM", k.rep_open(owner.decode()), lead_id))
        if queue:
            commands.append(("ZREM", k.queue(queue.decode()), lead_id))
        if lx:  # the list indexes (lists.py)
            commands.append(("ZREM", k.lists, *index_members(lead_id, lx)))
        if decision:
            try:
                record = _decode_record(decision)
            except msgspec.DecodeError:
                record = _Stored()
            address = record.lead.get("email")
            if email is None and isinstance(address, str):
                commands.append(("SREM", k.person(person_hash(address)), lead_id))
            ext = record.lead.get("external_id")
            if isinstance(ext, str) and ext:
                commands.append(("DEL", k.idempotency(f"ext:{record.source or 'api'}", ext)))
        commands.append(("XADD", k.outbox, "NOMKSTREAM", "MAXLEN", "~", store.outbox_maxlen,
                         "*", "type", "lead.erased", "lead_id", lead_id, "at", now_ms))
    if email:
        commands.append(("DEL", k.person(person_hash(email))))
    starts = [ms for i in ids if (ms := _lead_ms(i)) is not None]
    outbox_start = min(starts) - 60_000 if starts else 0
    commands.append(("EXEC",))
    with translate_errors("erasure"):
        store._count(1)
        replies = await store.wire.batch(commands)
    for reply in replies:
        check_reply("erasure", reply)
    scrubbed = 0
    if ids:
        wanted = set(ids)
        # the lead.erased events just added carry only the id: keep them
        for stream in (k.outbox, k.outbox_dead):
            scrubbed += await _scrub_erased(store, stream, wanted, outbox_start)
    entry = Erasure(id="", at=now_ms, kind=kind, leads=found, events=events,
                    outbox_entries=scrubbed, by=by)
    fields: list[Arg] = ["at", now_ms, "kind", kind, "leads", found, "events", events,
                         "outbox_entries", scrubbed, "by", by]
    with translate_errors("erasure log"):
        store._count(1)
        entry.id = (await store.wire.call("XADD", k.erasures, "MAXLEN", "~", _ERASURE_MAXLEN,
                                          "*", *fields)).decode()
    return entry


async def _scrub_erased(store: Store, key: str, ids: set[str], start_ms: int) -> int:
    """Like :func:`_scrub_stream` but keeps ``lead.erased`` notices."""
    removed = 0
    cursor = f"{max(start_ms, 0)}-0"
    while True:
        with translate_errors("erasure scan"):
            store._count(1)
            entries = await store.wire.call("XRANGE", key, cursor, "+", "COUNT", _SCAN_CHUNK)
        check_reply("erasure scan", entries)
        if not entries:
            return removed
        doomed: list[Arg] = []
        for entry_id, fields in entries:
            flat = dict(zip(fields[::2], fields[1::2], strict=False)) if fields else {}
            lead = flat.get(b"lead_id")
            if lead is not None and lead.decode(errors="replace") in ids and \
                    flat.get(b"type") != b"lead.erased":
                doomed.append(entry_id)
        if doomed:
            with translate_errors("erasure delete"):
                store._count(1)
                removed += int(await store.wire.call("XDEL", key, *doomed))
        if len(entries) < _SCAN_CHUNK:
            return removed
        last = entries[-1][0].decode()
        ms, _, seq = last.partition("-")
        cursor = f"{ms}-{int(seq) + 1}"


async def erasure_log(store: Store, count: int = 100) -> list[Erasure]:
    with translate_errors("erasure log"):
        store._count(1)
        entries = await store.wire.call("XREVRANGE", store.keys.erasures, "+", "-", "COUNT",
                                        count)
    out = []
    for entry_id, fields in entries:
        f = {fields[i].decode(): fields[i + 1].decode() for i in range(0, len(fields), 2)}
        out.append(Erasure(id=entry_id.decode(), at=int(f.get("at", 0)), kind=f.get("kind", ""),
                           leads=int(f.get("leads", 0)), events=int(f.get("events", 0)),
                           outbox_entries=int(f.get("outbox_entries", 0)), by=f.get("by", "")))
    return out
