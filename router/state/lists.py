"""The list indexes (GET /v1/leads and friends): reading them; the scripts write them.

One zset, ``lx`` (keys.py), every member scored 0 so it sorts by bytes:
``CODE \\x1f VALUE \\x1f INV \\x1f ID`` with INV = 13 digits of ``9999999999999 - created ms``,
so one value's leads are a contiguous range, newest first, and a page is one
``ZRANGE lx [start (end BYLEX LIMIT 0 n`` (never SCAN). CODE: ``a`` every lead (value
empty), ``s`` status, ``t`` territory, ``g`` segment, ``r`` grade, ``x`` external id,
``o`` owner, ``p`` pool, ``q`` queue, ``l`` SLA state. The commit (lua/commit.lua) adds a
lead's entries in one ZADD and keeps in the lead hash ``lx`` = INV then its values in that
order; every script that moves a lead (transition, owner, escalate, requalify) ends with
``lx_sync`` (lua/_lx.lua), which replaces the entries whose value changed. The ``a`` entry
carries the external id after the lead id. The commit's members are built by the worker
(codec.py ``lx_args``), Valkey only stores them. Retention: the zset expires a retention
(and up to an eighth more: codec.py ``LxKeep``) after the last commit; one commit in 16
removes the oldest leads past the retention from the ``a`` range (at most 64, with their
``x`` entries) and prunes by age its own ranges and 2 random others (``lx:vals``); readers
never look past the retention horizon.
Erasure removes the lead's entries (erasure.py). Leads stored before the indexes are not
listed (they age out within one retention).

Accounts (``accounts`` zset, lex): ``d\\x1fDOMAIN`` and ``o\\x1fOWNER\\x1fDOMAIN``, written
with the account hashes by lua/accounts.lua.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

import msgspec

from router.state.errors import check_reply, translate_errors
from router.state.models import to_ms
from router.state.scripts import pack_keys
from router.state.store import Store
from router.state.wire import Arg

__all__ = [
    "CODES",
    "FIELDS",
    "TOP",
    "IndexedLead",
    "accounts_page",
    "backfill_accounts",
    "count_ranges",
    "index_members",
    "inv",
    "leads_of",
    "member_id",
    "put_accounts",
    "queue_entries",
    "range_bounds",
    "ranges_in_use",
    "read_indexed",
    "secret",
    "walk",
]

# Filter name → CODE; FIELDS: the lead hash's ``lx`` values in this order (after INV).
CODES = {"all": "a", "status": "s", "territory": "t", "segment": "g", "grade": "r",
         "external_id": "x", "owner": "o", "pool": "p", "queue": "q", "sla_state": "l"}
FIELDS = tuple(CODES)
TOP = 9_999_999_999_999  # INV = TOP - created ms


def inv(ms: int) -> str:
    return f"{TOP - ms:013d}"


class IndexedLead(msgspec.Struct, frozen=True, kw_only=True):
    """A lead as the lists show it: its index values (FIELDS order, "" = none) and live
    state, from its hash (``lx``, ``state``, ``due_at``, ``queue``, ``assigned_at``)."""

    id: str
    created_ms: int
    values: tuple[str, ...]
    state: str
    due_ms: int | None


def index_members(lead_id: str, lx: bytes | str) -> list[str]:
    """The ``lx`` members of a lead from its hash's ``lx`` field (erasure removes them); the
    ``a`` entry carries the external id after the lead id."""
    parts = (lx.decode() if isinstance(lx, bytes) else lx).split("\x1f")
    values = (parts[1:] + [""] * len(FIELDS))[:len(FIELDS)]
    ext = values[FIELDS.index("external_id")]
    out = [f"a\x1f\x1f{parts[0]}\x1f{lead_id}" + (f"\x1f{ext}" if ext else "")]
    for code, value in zip(list(CODES.values())[1:], values[1:], strict=True):
        if value:
            out.append(f"{code}\x1f{value}\x1f{parts[0]}\x1f{lead_id}")
    return out


def member_id(member: str) -> str:
    """The lead id of an ``lx`` member (the ``a`` entry has the external id after it)."""
    return member.split("\x1f", 4)[3]


def range_bounds(code: str, value: str, *, since_ms: int | None,
                 until_ms: int | None) -> tuple[str, str]:
    """The BYLEX bounds of a value's leads created in [since, until] (newest first)."""
    prefix = f"{code}\x1f{value}\x1f"
    start = "[" + prefix + (inv(until_ms) if until_ms is not None else "")
    end = "(" + prefix + (inv(since_ms) + "\x20" if since_ms is not None else "\x7f")
    return start, end


async def count_ranges(store: Store, ranges: Sequence[tuple[str, str]], *,
                       since_ms: int | None, until_ms: int | None) -> list[int]:
    """How many entries each (code, value) range holds in the window: one round trip."""
    calls: list[tuple[Arg, ...]] = [
        ("ZLEXCOUNT", store.keys.lists, *range_bounds(c, v, since_ms=since_ms,
                                                       until_ms=until_ms))
        for c, v in ranges]
    with translate_errors("list read"):
        store._count(1)
        replies = await store.wire.batch(calls)
    for reply in replies:
        check_reply("list read", reply)
    return [int(r) for r in replies]


async def walk(store: Store, code: str, value: str, *, since_ms: int | None,
               until_ms: int | None, after: str | None, count: int) -> list[str]:
    """Up to ``count`` members of one range in the window, after the member ``after``."""
    start, end = range_bounds(code, value, since_ms=since_ms, until_ms=until_ms)
    if after is not None:  # a member of this range (the cursor checks it)
        start = "(" + after
    with translate_errors("list read"):
        store._count(1)
        reply = await store.wire.call("ZRANGE", store.keys.lists, start, end, "BYLEX",
                                      "LIMIT", 0, count)
    check_reply("list read", reply)
    return [m.decode() for m in reply]


async def read_indexed(store: Store, lead_ids: Sequence[str]) -> list[IndexedLead | None]:
    """Each lead's index values and live state (one pipelined round trip); None = gone, or
    stored before the indexes."""
    if not lead_ids:
        return []
    k = store.keys
    with translate_errors("list read"):
        store._count(1)
        replies = await store.wire.batch(
            [("HMGET", k.lead(i), "lx", "state", "due_at") for i in lead_ids])
    out: list[IndexedLead | None] = []
    for lead_id, reply in zip(lead_ids, replies, strict=True):
        check_reply("list read", reply)
        lx, state, due = reply
        if lx is None:
            out.append(None)
            continue
        parts = lx.decode().split("\x1f")
        values = tuple((parts[1:] + [""] * len(FIELDS))[:len(FIELDS)])
        out.append(IndexedLead(id=lead_id, created_ms=TOP - int(parts[0]), values=values,
                               state=(state or b"").decode(),
                               due_ms=int(due) if due else None))
    return out


async def leads_of(store: Store, person: str) -> list[str]:
    """The lead ids of a person (sha256 key of the erasure index)."""
    with translate_errors("list read"):
        store._count(1)
        members = await store.wire.call("SMEMBERS", store.keys.person(person))
    check_reply("list read", members)
    return sorted(m.decode() for m in members)


async def secret(store: Store, fresh: bytes) -> bytes:
    """The deployment's cursor key: ``fresh`` if none was set yet, else the one set."""
    k = store.keys.lists_secret
    with translate_errors("list read"):
        store._count(1)
        _, value = await store.wire.batch([("SET", k, fresh, "NX"), ("GET", k)])
    check_reply("list read", value)
    return bytes(value)


async def accounts_page(store: Store, *, owner: str | None, after: str | None,
                        count: int) -> list[tuple[str, str]]:
    """Up to ``count`` (domain, owner) in domain order after the domain ``after``."""
    prefix = f"o\x1f{owner}\x1f" if owner is not None else "d\x1f"
    start = "(" + prefix + after if after is not None else "[" + prefix
    with translate_errors("accounts read"):
        store._count(1)
        reply = await store.wire.call("ZRANGE", store.keys.accounts_index, start,
                                      "(" + prefix[:-1] + "\x20", "BYLEX", "LIMIT", 0, count)
    check_reply("accounts read", reply)
    domains = [m.decode()[len(prefix):] for m in reply]
    if owner is not None:
        return [(d, owner) for d in domains]
    if not domains:
        return []
    with translate_errors("accounts read"):
        store._count(1)
        owners = await store.wire.batch(
            [("HGET", store.keys.account(d), "owner") for d in domains])
    return [(d, o.decode()) for d, o in zip(domains, owners, strict=True)
            if isinstance(o, bytes)]


async def put_accounts(store: Store, rows: Sequence[tuple[str, str]], *,
                       now: dt.datetime, chunk: int = 1000) -> int:
    """Set (owner) or delete (owner "") account owners with the index (lua/accounts.lua),
    ``chunk`` rows a script call, 4 calls pipelined at a time. Returns how many changed.
    Not atomic across chunks: callers check every row first (all or nothing on input)."""
    k = store.keys
    at = str(to_ms(now))

    async def one(part: Sequence[tuple[str, str]]) -> int:
        keys = pack_keys((k.accounts_index, *(k.account(d) for d, _ in part)))
        args = [at, *(x for row in part for x in row)]
        return int(await store.run_script("accounts", [keys], args))

    # A few chunks in flight (pipelined), not all: each call must finish within the
    # connection's call timeout, and live routing shares the connection.
    parts = [rows[i:i + chunk] for i in range(0, len(rows), chunk)]
    changed = 0
    for i in range(0, len(parts), 4):
        changed += sum(await asyncio.gather(*(one(p) for p in parts[i:i + 4])))
    return changed


async def queue_entries(store: Store, queues: Sequence[str], *, lo_ms: int,
                        count: int) -> list[list[tuple[str, int]]]:
    """Per queue, up to ``count`` (lead id, queued ms) from ``lo_ms`` on, oldest first (one
    round trip). Entries of leads that left the queue may remain until pruned: callers check
    the lead's ``queue``."""
    k = store.keys
    with translate_errors("queue read"):
        store._count(1)
        replies = await store.wire.batch(
            [("ZRANGE", k.queue(q), lo_ms, "+inf", "BYSCORE", "LIMIT", 0, count, "WITHSCORES")
             for q in queues])
    out = []
    for reply in replies:
        check_reply("queue read", reply)
        out.append([(reply[i].decode(), int(float(reply[i + 1])))
                    for i in range(0, len(reply), 2)])
    return out


async def ranges_in_use(store: Store, code: str) -> list[str]:
    """The values of ``code`` seen by the pruning registry (``lx:vals``)."""
    with translate_errors("list read"):
        store._count(1)
        members = await store.wire.call("SMEMBERS", store.keys.lists_vals)
    check_reply("list read", members)
    head = f"{code}\x1f"
    return sorted(m.decode()[2:] for m in members if m.decode().startswith(head))


async def backfill_accounts(store: Store, *, count: int = 1000) -> int | None:
    """Index the account hashes written before the accounts index (one SCAN, once per
    deployment: the marker ``accounts:backfill``; ``ZADD NX`` never overrides a newer write).
    Returns the accounts indexed, or None when it ran before."""
    k = store.keys
    with translate_errors("accounts backfill"):
        store._count(1)
        if await store.wire.call("EXISTS", k.accounts_backfill):
            return None
    head, cursor, added = k.account(""), b"0", 0
    while True:
        with translate_errors("accounts backfill"):
            store._count(1)
            cursor, names = await store.wire.call("SCAN", cursor, "MATCH", head + "*", "COUNT",
                                                  count, "TYPE", "hash")
            domains = [n.decode()[len(head):] for n in names]
            owners = await store.wire.batch([("HGET", k.account(d), "owner") for d in domains]
                                            ) if domains else []
            pairs = [(d, o.decode()) for d, o in zip(domains, owners, strict=True)
                     if isinstance(o, bytes)]
            if pairs:
                store._count(1)
                added += int(await store.wire.call(
                    "ZADD", k.accounts_index, "NX",
                    *(x for d, o in pairs for x in (0, f"d\x1f{d}", 0, f"o\x1f{o}\x1f{d}")))) // 2
        if cursor in (b"0", 0):
            break
    with translate_errors("accounts backfill"):
        store._count(1)
        await store.wire.call("SET", k.accounts_backfill, added)
    return added


async def present(store: Store, members: Sequence[str]) -> list[bool]:
    """Whether each member is in the index (one ZMSCORE): a lead's other filter values are
    checked without reading its hash."""
    if not members:
        return []
    with translate_errors("list read"):
        store._count(1)
        reply = await store.wire.call("ZMSCORE", store.keys.lists, *members)
    check_reply("list read", reply)
    return [score is not None for score in reply]
