"""Reading back what committed decisions were made from, for the replay (nothing written).

The commit script (lua/commit.lua) adds every lead to ``leads:arrivals`` (zset, lead id by
created ms; pruned by score on one commit in 16, TTL retention; erasure removes the lead) and
stores in the lead hash ``input`` (the caller's msgpack: router/services/decision_input.py)
and ``pick``: the owner, pool and queue as committed, then what the pool pick read
(lua/_pick.lua), '\\x1f' separated: per pool tried ``\\x1ep``, id, the pool's day count;
per member read ``m``, rep, status, until, day count; the pool hash ``h``, field count,
fields; least_loaded's open counts ``o``, rep, count.

:func:`arrivals` pages through a window in arrival order (ZRANGE BYSCORE ... LIMIT, never
SCAN); :func:`read_stored` reads a page's lead hashes in one pipelined round trip.
:func:`backfill_arrivals` indexes leads committed before the index existed (one SCAN), so a
replay sees and counts them (they have no input: skipped); :func:`complete_backfill` runs it
once per deployment (marker ``leads:arrivals:backfill``, resumable from its SCAN cursor):
the service at start-up in the background, the replay CLI/API before reading if it never
finished (router/services/replay.py).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncGenerator, Sequence

import msgspec

from router.state.errors import check_reply, translate_errors
from router.state.store import Store
from router.state.wire import Arg

__all__ = ["LEASE_MS", "MemberSeen", "PickFacts", "PoolSeen", "StoredInput", "arrival_pages",
           "arrivals",
           "backfill_arrivals", "backfill_finished", "complete_backfill", "parse_pick",
           "read_decisions", "read_stored"]


class MemberSeen(msgspec.Struct, frozen=True, array_like=True):
    """A pool member's live facts as the pick read them."""

    rep: str
    status: str  # "" = never set (available)
    until: int | None  # ms
    today: int  # the rep's day counter (the plan's local day)


class PoolSeen(msgspec.Struct, kw_only=True):
    """One pool of the chain as the pick read it: its day count; the members it read (none when
    the pool was at its cap); its hash (None when nobody was eligible: not read); least_loaded's
    open counts of the eligible members."""

    pool: str
    used: int
    members: list[MemberSeen] = []
    state: dict[str, str] | None = None
    open: dict[str, int] = {}


class PickFacts(msgspec.Struct, kw_only=True):
    owner: str | None
    pool: str | None
    queue: str | None
    pools: list[PoolSeen]


class StoredInput(msgspec.Struct, frozen=True, kw_only=True):
    """One stored lead as the replay reads it: ``input`` None = stored before inputs were kept
    (or by a caller that keeps none); ``missing``: the lead expired or was erased meanwhile."""

    lead_id: str
    created_ms: int
    input: bytes | None
    pick: bytes | None
    missing: bool = False


def parse_pick(raw: bytes) -> PickFacts:
    """The ``pick`` field → :class:`PickFacts` (see the module doc for the layout)."""
    parts = raw.decode().split("\x1f")
    owner, pool, queue = parts[0] or None, parts[1] or None, parts[2] or None
    if len(parts) <= 4 and (len(parts) == 3 or not parts[3]):  # no pool tried (most leads)
        return PickFacts(owner=owner, pool=pool, queue=queue, pools=[])
    pools: list[PoolSeen] = []
    cur: PoolSeen | None = None
    i, n = 3, len(parts)
    while i < n:
        tag = parts[i]
        if tag == "\x1ep":
            cur = PoolSeen(pool=parts[i + 1], used=int(parts[i + 2]))
            pools.append(cur)
            i += 3
        elif cur is None:  # an empty chain: "" after the header
            i += 1
        elif tag == "m":
            until = parts[i + 3]
            cur.members.append(MemberSeen(parts[i + 1], parts[i + 2],
                                          int(until) if until else None, int(parts[i + 4])))
            i += 5
        elif tag == "h":
            count = int(parts[i + 1])
            flat = parts[i + 2:i + 2 + count]
            cur.state = dict(zip(flat[::2], flat[1::2], strict=True))
            i += 2 + count
        elif tag == "o":
            cur.open[parts[i + 1]] = int(parts[i + 2])
            i += 3
        else:
            raise ValueError(f"unreadable pick facts at {i}: {tag!r}")
    return PickFacts(owner=owner, pool=pool, queue=queue, pools=pools)


async def arrivals(store: Store, *, since_ms: int | None, until_ms: int | None,
                   after: tuple[int, int] | None, count: int) -> list[tuple[str, int]]:
    """Up to ``count`` (lead id, created ms) of the window [since, until] in arrival order.
    ``after``: (score, how many ids with that score were returned already) of the last page."""
    lo = "-inf" if since_ms is None else str(since_ms)
    skip = 0
    if after is not None:
        lo, skip = str(after[0]), after[1]
    hi = "+inf" if until_ms is None else str(until_ms)
    with translate_errors("replay read"):
        store._count(1)
        reply = await store.wire.call("ZRANGE", store.keys.arrivals, lo, hi, "BYSCORE",
                                      "LIMIT", skip, count, "WITHSCORES")
    check_reply("replay read", reply)
    return [(reply[i].decode(), int(float(reply[i + 1]))) for i in range(0, len(reply), 2)]


async def arrival_pages(store: Store, *, since_ms: int | None, until_ms: int | None,
                        count: int) -> AsyncGenerator[list[tuple[str, int]], None]:
    """The window [since, until] in arrival order, ``count`` (lead id, created ms) a page
    (:func:`arrivals`, its cursor carried across leads that share a millisecond), a yield to
    the event loop between pages: readers of a whole window (the replay, the outcome
    reader) never hold up live routing."""
    after: tuple[int, int] | None = None
    while True:
        page = await arrivals(store, since_ms=since_ms, until_ms=until_ms, after=after,
                              count=count)
        if not page:
            return
        last = page[-1][1]
        same = sum(1 for _, ms in page if ms == last)
        after = (last, same + (after[1] if after is not None and after[0] == last else 0))
        yield page
        if len(page) < count:
            return
        await asyncio.sleep(0)  # live routing first


async def read_stored(store: Store, page: Sequence[tuple[str, int]]) -> list[StoredInput]:
    """The ``input`` and ``pick`` of each lead of ``page``: one pipelined round trip."""
    if not page:
        return []
    k = store.keys
    with translate_errors("replay read"):
        store._count(1)
        replies = await store.wire.batch(
            [("HMGET", k.lead(lead_id), "input", "pick", "state") for lead_id, _ in page])
    out = []
    for (lead_id, ms), reply in zip(page, replies, strict=True):
        check_reply("replay read", reply)
        raw, pick, state = reply
        out.append(StoredInput(lead_id=lead_id, created_ms=ms, input=raw, pick=pick,
                               missing=state is None))
    return out


async def read_decisions(store: Store, lead_ids: Sequence[str]) -> list[bytes | None]:
    """The stored decision JSON of each lead (the explanations of changed leads)."""
    if not lead_ids:
        return []
    with translate_errors("replay read"):
        store._count(1)
        replies = await store.wire.batch(
            [("HGET", store.keys.lead(lead_id), "decision") for lead_id in lead_ids])
    for reply in replies:
        check_reply("replay read", reply)
    return list(replies)


async def backfill_arrivals(store: Store, *, count: int = 1000, cursor: bytes = b"0",
                            pause: float = 0.0, lease: str | None = None) -> int:
    """Add to the arrival index every stored lead not in it yet (``ZADD NX``, by the time in
    its id): the leads of a version before the index. One SCAN over the keyspace from
    ``cursor``, ``count`` keys a step; after each step the cursor is kept in the marker hash
    (a stopped run resumes there: :func:`complete_backfill`), the ``lease`` key (when given)
    renewed, and ``pause`` seconds slept. Returns how many leads were added."""
    k = store.keys
    added = 0
    while True:
        with translate_errors("arrival backfill"):
            store._count(1)
            reply = await store.wire.call("SCAN", cursor, "MATCH", k.lead("*"), "COUNT", count,
                                          "TYPE", "hash")
        check_reply("arrival backfill", reply)
        cursor, keys = reply
        entries: list[str | int] = []
        for key in keys:
            lead_id = k.lead_id(key) or ""
            if lead_id.startswith("ld_"):
                try:
                    entries += [int(lead_id[3:15], 16), lead_id]
                except ValueError:
                    continue
        calls: list[tuple[Arg, ...]] = []
        if entries:
            calls += [("ZADD", k.arrivals, "NX", *entries),
                      ("PEXPIRE", k.arrivals, store.retention_ms)]
        finished = cursor in (b"0", 0)
        if not finished:
            calls.append(("HSET", k.arrivals_backfill, "cursor", cursor))
        if lease is not None:
            calls.append(("PEXPIRE", k.arrivals_lease, LEASE_MS))
        done = []
        if calls:
            with translate_errors("arrival backfill"):
                store._count(1)
                done = await store.wire.batch(calls)
        for reply in done:
            check_reply("arrival backfill", reply)
        if entries:
            added += int(done[0])
        if finished:
            return added
        if pause:
            await asyncio.sleep(pause)  # live routing first


LEASE_MS = 60_000


async def backfill_finished(store: Store) -> bool:
    """Whether :func:`complete_backfill` ran to the end once on this store."""
    with translate_errors("arrival backfill"):
        store._count(1)
        done = await store.wire.call("HEXISTS", store.keys.arrivals_backfill, "done")
    check_reply("arrival backfill", done)
    return bool(done)


async def complete_backfill(store: Store, *, count: int = 1000, pause: float = 0.0,
                            exclusive: bool = False) -> int | None:
    """:func:`backfill_arrivals` once per deployment: nothing when the marker
    (``leads:arrivals:backfill`` ``done``) says it ran to the end; else from the cursor where
    an earlier run stopped, then the marker is set. ``exclusive`` (the service's start-up
    run): only if no other process holds the lease key (``SET NX``, renewed each step), so
    several workers starting together scan once. Returns the leads added, or None when it did
    not run (finished already, or another process is running it)."""
    k = store.keys
    token = f"{os.getpid()}:{secrets.token_hex(4)}"
    with translate_errors("arrival backfill"):
        store._count(1)
        done, cursor = await store.wire.call("HMGET", k.arrivals_backfill, "done", "cursor")
        if done is not None:
            return None
        if exclusive and await store.wire.call("SET", k.arrivals_lease, token, "NX", "PX",
                                               LEASE_MS) is None:
            return None
    added = await backfill_arrivals(store, count=count, cursor=cursor or b"0", pause=pause,
                                    lease=token if exclusive else None)
    with translate_errors("arrival backfill"):
        store._count(1)
        replies = await store.wire.batch([
            ("HSET", k.arrivals_backfill, "done", added), ("HDEL", k.arrivals_backfill, "cursor"),
            *([("DEL", k.arrivals_lease)] if exclusive else [])])
    for reply in replies:
        check_reply("arrival backfill", reply)
    return added
