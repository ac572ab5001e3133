"""Micro-benchmark of the state layer's hot path against an embedded Valkey.

    uv run python loadtests/bench_state.py [--leads 20000] [--concurrency 16]

Per lead it runs what POST /v1/leads will: a prefetch (two idempotency claims + the account
owner) and a commit into a weighted pool whose overflow chain has two more pools (5 members
each), then reports:

* sequential µs per prefetch+commit (one task: latency, client + server + loopback),
* client CPU µs per lead (process time / leads: what limits one worker),
* commits/s with N concurrent tasks on one event loop,
* Redis round trips per lead (from Store.round_trips),
* references measured in the same run, since this machine is noisy: a PING through the same
  connection, and a PING and a 3-command pipeline through redis-py's asyncio client. Compare the
  ratios across runs, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import tempfile
import time
from collections.abc import Awaitable, Callable

import redis.asyncio

from router.engine.availability import MemberPlan, PoolPlan
from router.state import ClaimRequest, CommitPlan, Store, fingerprint
from router.state.embedded import EmbeddedValkey

DAY = "2026-03-02"
NOW = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
DECISION = b'{"status":"sql","score":{"total":85,"grade":"A"},"rules_version":"abc123"}' * 4


def _chain() -> tuple[PoolPlan, ...]:
    def pool(pid: str, strategy: str) -> PoolPlan:
        members = tuple(MemberPlan(f"{pid}-r{i}", i + 1, True, DAY, -1) for i in range(5))
        return PoolPlan(id=pid, strategy=strategy, pool_cap=-1, day=DAY, members=members)
    return (pool("ent", "weighted_round_robin"), pool("mm", "least_loaded"),
            pool("smb", "round_robin"))


async def _one(store: Store, lead_id: str, chain: tuple[PoolPlan, ...]) -> None:
    fp = fingerprint(lead_id.encode())
    got = await store.prefetch(
        [ClaimRequest(scope="key:web", key=lead_id, fingerprint=fp, lead_id=lead_id),
         ClaimRequest(scope="ext:web", key=lead_id, fingerprint=fp, lead_id=lead_id)],
        account_domain="acme.com")
    await store.commit(CommitPlan(lead_id=lead_id, now=NOW, kind="pool", decision=DECISION,
                                  chain=chain, queue="unassigned", claims=got.owned_claims,
                                  due_at=NOW + dt.timedelta(minutes=5), sla_policy="hot"))


async def _per_call(n: int, fn: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """(wall µs, client CPU µs) per call of ``fn``, after a warm-up."""
    for _ in range(200):
        await fn()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        await fn()
    return ((time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6)


async def references(store: Store, url: str, n: int) -> float:
    client = redis.asyncio.Redis.from_url(url)

    async def pipeline3() -> None:
        async with client.pipeline(transaction=False) as pipe:
            pipe.get("a")
            pipe.get("b")
            pipe.get("c")
            await pipe.execute()

    ping = await _per_call(n, store.ping)
    for name, (wall, cpu) in (("PING, this connection", ping),
                              ("PING, redis-py", await _per_call(n, client.ping)),
                              ("3-command pipeline, redis-py", await _per_call(n, pipeline3))):
        print(f"reference:    {wall:7.1f} µs {name}, client CPU {cpu:6.1f} µs")
    await client.aclose()
    return ping[1]


async def bench(url: str, leads: int, concurrency: int) -> None:
    store = await Store.connect(url)
    chain = _chain()
    ping_cpu = await references(store, url, min(leads, 5000))
    ids = (f"lead-{i}" for i in itertools.count())
    for _ in range(500):  # warm up: connections, caches, script cache
        await _one(store, next(ids), chain)

    await store.wire.call("CONFIG", "RESETSTAT")
    trips = store.round_trips
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(leads):
        await _one(store, next(ids), chain)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    per_lead_trips = (store.round_trips - trips) / leads
    print(f"sequential:   {wall / leads * 1e6:7.1f} µs per prefetch+commit "
          f"({leads / wall:,.0f} leads/s), client CPU {cpu / leads * 1e6:6.1f} µs/lead, "
          f"{per_lead_trips:g} round trips/lead (CPU = {cpu / leads * 1e6 / ping_cpu:.1f} PINGs)")

    stats = (await store.wire.call("INFO", "commandstats")).decode()
    for line in stats.splitlines():
        if line.startswith(("cmdstat_evalsha:", "cmdstat_set:")):
            name, fields = line.removeprefix("cmdstat_").split(":", 1)
            per_call = dict(f.split("=") for f in fields.split(","))["usec_per_call"]
            print(f"server:       {float(per_call):7.1f} µs of Redis time per {name.upper()} "
                  "(SETs inside scripts included)")

    remaining = iter(range(leads))

    async def worker() -> None:
        for _ in remaining:
            await _one(store, next(ids), chain)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"concurrent:   {leads / wall:,.0f} commits/s with {concurrency} tasks, "
          f"client CPU {cpu / leads * 1e6:6.1f} µs/lead")

    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(leads):
        lead_id = next(ids)
        await store.commit(CommitPlan(lead_id=lead_id, now=NOW, kind="pool", decision=DECISION,
                                      chain=chain, queue="unassigned"))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"commit only:  {wall / leads * 1e6:7.1f} µs per commit, "
          f"client CPU {cpu / leads * 1e6:6.1f} µs/commit")
    await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--redis-url", help="use this server instead of an embedded Valkey")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop  # uvicorn[standard] brings it; the service runs on it
        uvloop.install()
    if args.redis_url:
        asyncio.run(bench(args.redis_url, args.leads, args.concurrency))
        return
    with tempfile.TemporaryDirectory() as tmp, EmbeddedValkey(tmp) as server:
        print(f"embedded valkey-server ({server.connect_hint}), loop {args.loop}")
        asyncio.run(bench(server.url, args.leads, args.concurrency))


if __name__ == "__main__":
    main()
