"""List API benchmark: listing 50 leads from an index of N leads (issue 18, "Performance").

    uv run python loadtests/bench_lists.py [--leads 1000000] [--repeat 200]

Starts an embedded Valkey, writes N leads' list-index entries and lead-hash fields directly
(pipelined, the layout lua/commit.lua writes: the ``lx`` zset, each lead hash's ``lx``,
``state``, ``due_at``), then times ``ListService.leads`` / ``.queue`` in-process — the
service's time for a page, its Redis round trips included, without HTTP — for: no filter,
one filter, two and three filters (the walk checks the others), a rare combination (the
scan budget), ``q`` by external id, a deep cursor (after 90% of the index) and a queue page.
Prints p50 / p90 / p99 in ms per case, and the memory the indexes take per lead (MEMORY
USAGE of the zset and of the ``lx`` hash field, at the size built).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

from router.services import _lists_cursor as cur  # noqa: E402
from router.services.clock import Clock  # noqa: E402
from router.services.directory import DirectoryService  # noqa: E402
from router.services.lists import ListService  # noqa: E402
from router.services.lists_model import LeadFilter  # noqa: E402
from router.services.rules import RulesManager  # noqa: E402
from router.state import lists as lx  # noqa: E402
from router.state.embedded import EmbeddedValkey  # noqa: E402
from router.state.store import Store  # noqa: E402

STATUSES = ("mql", "mql", "mql", "sql", "nurture", "bad_lead")
GRADES = ("A", "B", "C", "D")
TERRITORIES = ("us", "emea", "apac", "latam")
SEGMENTS = ("enterprise", "mid", "smb")
REPS = tuple(f"rep{i:02d}" for i in range(50))
POOLS = tuple(f"pool{i}" for i in range(5))
QUEUES = ("unassigned", "review", "emea-unassigned", "nurture", "spam")


def _lead(i: int, now_ms: int, rng: random.Random) -> tuple[str, list[str]]:
    created = now_ms - rng.randrange(0, 6 * 86_400_000)  # within the retention (7 days)
    lead_id = f"ld_{created:012x}{i:08x}"
    queued = rng.random() < 0.2
    owner = "" if queued else rng.choice(REPS)
    values = ["", rng.choice(STATUSES), rng.choice(TERRITORIES), rng.choice(SEGMENTS),
              rng.choice(GRADES), f"crm-{i}" if i % 2 else "", owner,
              "" if queued else rng.choice(POOLS), rng.choice(QUEUES) if queued else "",
              "" if queued else rng.choice(("pending", "met", "breached"))]
    return lead_id, [lx.inv(created), *values]


async def build(store: Store, n: int, batch: int = 2000) -> None:
    """N leads' index entries and hash fields, in pipelined batches."""
    rng = random.Random(7)
    now_ms = int(time.time() * 1000)
    k = store.keys
    codes = list(lx.CODES.values())
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        members: list[Any] = []
        calls: list[tuple[Any, ...]] = []
        for i in range(start, min(n, start + batch)):
            lead_id, parts = _lead(i, now_ms, rng)
            for c, value in enumerate(parts[1:]):
                if c and value:
                    members += [0, f"{codes[c]}\x1f{value}\x1f{parts[0]}\x1f{lead_id}"]
            ext = parts[6]  # the `a` entry carries the external id (lua/_lx.lua)
            members += [0, f"a\x1f\x1f{parts[0]}\x1f{lead_id}" + (f"\x1f{ext}" if ext else "")]
            calls.append(("HSET", k.lead(lead_id), "lx", "\x1f".join(parts),
                          "state", "queued" if parts[9] else "assigned", "due_at", ""))
            if parts[9]:  # queued: the queue's own zset (queued ms), as commit.lua writes
                calls.append(("ZADD", k.queue(parts[9]), lx.TOP - int(parts[0]), lead_id))
        calls.append(("ZADD", k.lists, *members))
        for reply in await store.wire.batch(calls):
            if isinstance(reply, Exception):
                raise reply
    print(f"built {n:,} leads in {time.perf_counter() - t0:.1f} s")


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> tuple[list[float], Any]:
    out, last = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        last = await fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out, last


def _row(name: str, ms: list[float], note: str) -> None:
    q = statistics.quantiles(ms, n=100)
    print(f"{name:<34} p50 {q[49]:7.2f}  p90 {q[89]:7.2f}  p99 {q[98]:7.2f} ms   {note}")


async def bench(url: str, n: int, repeat: int) -> None:
    store = await Store.connect(url, retention=dt.timedelta(days=7))
    try:
        await build(store, n)
        rules = RulesManager(ROOT / "rules")
        rules.load_initial()
        clock = Clock()
        lists = ListService(store=store, rules=rules, clock=clock,
                            directory=DirectoryService(store=store, rules=rules, clock=clock))
        deep = await store.wire.call("ZRANGE", store.keys.lists, "[a\x1f\x1f", "(a\x1f\x20",
                                     "BYLEX", "LIMIT", int(n * 0.9), 1)
        deep_cursor = cur.seal(await lists._cursor_key(), "leads",
                               cur.digest("leads", msgspec.to_builtins(LeadFilter())),
                               [deep[0].decode()])
        cases: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("no filter", lambda: lists.leads(LeadFilter())),
            ("status=sql", lambda: lists.leads(LeadFilter(status="sql"))),
            ("owner=rep07", lambda: lists.leads(LeadFilter(owner="rep07"))),
            ("status=mql & grade=A", lambda: lists.leads(LeadFilter(status="mql", grade="A"))),
            ("status & territory & segment",
             lambda: lists.leads(LeadFilter(status="mql", territory="emea",
                                            segment="smb"))),
            ("rare: owner & bad_lead & grade A",
             lambda: lists.leads(LeadFilter(owner="rep07", status="bad_lead", grade="A"))),
            ("q=crm-12345 (external id)", lambda: lists.leads(LeadFilter(q="crm-12345"))),
            ("deep cursor (90%)", lambda: lists.leads(LeadFilter(), cursor=deep_cursor)),
            ("queue emea-unassigned", lambda: lists.queue("emea-unassigned")),
        ]
        print(f"\nlisting 50 from {n:,} leads, {repeat} runs each (in-process, Redis "
              "round trips included):")
        for name, fn in cases:
            ms, page = await timed(fn, repeat)
            items = len(page.items)
            scanned = getattr(page, "scanned", items)
            _row(name, ms, f"{items} items, {scanned} scanned")
        zset = await store.wire.call("MEMORY", "USAGE", store.keys.lists, "SAMPLES", 0)
        sample = await store.wire.call("ZRANGE", store.keys.lists, "[a\x1f\x1f", "(a\x1f\x20",
                                       "BYLEX", "LIMIT", 0, 1)
        lead_id = lx.member_id(sample[0].decode())
        field = len(await store.wire.call("HGET", store.keys.lead(lead_id), "lx"))
        members = await store.wire.call("ZCARD", store.keys.lists)
        print(f"\nmemory: lx zset {zset / 1e6:.1f} MB for {members:,} entries = "
              f"{zset / n:.0f} B per lead ({zset / members:.0f} B per entry); the lead hash's "
              f"lx field ~{field + 16} B more per lead")
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        valkey = EmbeddedValkey(Path(tmp) / "valkey")
        url = valkey.start()
        try:
            asyncio.run(bench(url, args.leads, args.repeat))
        finally:
            valkey.stop()


if __name__ == "__main__":
    main()
