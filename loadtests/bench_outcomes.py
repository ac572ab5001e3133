"""Outcomes: ingestion rate against lead routing in one run, the commit's funnel counting cost,
and ``GET /v1/funnel`` over a million leads' aggregates.

    uv run python loadtests/bench_outcomes.py [--leads 3000] [--concurrency 16] [--rounds 3]
        [--agg-leads 1000000] [--days 90] [--groups 12] [--tune-leads 100000]

In one process against an embedded Valkey (the shipped ``rules/``, a fixed clock):

* ``route``: ``LeadService.route`` of new leads (the commit counts each lead in its 8 funnel
  groups, ``lua/_funnel.lua``), alternating with ``route, no funnel`` (the same with the
  funnel groups left out: the commit skips the counting) in ``--rounds`` pairs, so the
  machine's drift hits both alike; the Valkey server time per commit comes from
  ``INFO commandstats`` (EVALSHA µs per call);
* ``outcome``: ``OutcomeService.record`` (what ``POST /v1/leads/{id}/outcome`` does but HTTP)
  of meeting / opportunity / won outcomes for the leads just routed, in random order;
* ``funnel``: ``FunnelService.report`` over ``--days`` days of aggregates written directly for
  ``--agg-leads`` leads (``--groups`` groups per dimension, ``--combos`` combinations of
  groups routed a day, every stage pair's histogram spread over 10 doublings): the first
  report (it folds the past days' combinations, once), then p50 / p95 wall ms of a report
  ``by`` each dimension.

Reports leads/s, outcomes/s, client CPU µs and Redis round trips per call, and the ratios.
Then ``rules tune`` over ``--tune-leads`` leads (loadtests/bench_tune.py: its read, its fit
with the bootstrap, and a whole run with its replay), in its own Valkey.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import datetime as dt
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from leadrouter_sdk import Lead

import router.services.leads as leads_module
from router.services.funnel import FunnelService
from router.services.leads import LeadService
from router.services.outcomes import OutcomeIn, OutcomeService
from router.services.rules import RulesManager
from router.settings import Settings
from router.state.embedded import EmbeddedValkey
from router.state.funnel import BUCKETS_PER_DOUBLING, FUNNEL_DIMS
from router.state.store import Store

ROOT = Path(__file__).resolve().parents[1]
NOW = dt.datetime(2026, 3, 3, 15, 0, tzinfo=dt.UTC)


def mql_lead(i: int) -> Lead:
    return Lead(email=f"buyer{i}@firm{i % 400}.example", employees=2500, country="US",
                company=f"Firm {i % 400}", title="VP Sales", budget=100000)


async def timed(n: int, concurrency: int, store: Store,
                make: Callable[[int], Awaitable[Any]]) -> tuple[float, float, float]:
    """(per second, client CPU µs per call, round trips per call) of ``make(i)``, i < n."""
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await make(i)

    trips = store.round_trips
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return n / wall, cpu / n * 1e6, (store.round_trips - trips) / n


async def evalsha_usec(store: Store) -> tuple[int, int]:
    """(calls, µs) of EVALSHA so far on the server."""
    info = (await store.wire.call("INFO", "commandstats")).decode()
    for line in info.splitlines():
        if line.startswith("cmdstat_evalsha:"):
            f = dict(kv.split("=") for kv in line.split(":", 1)[1].split(","))
            return int(f["calls"]), int(f["usec"])
    return 0, 0


async def route_rounds(args: argparse.Namespace, store: Store, leads: LeadService
                       ) -> tuple[dict[str, list[float]], list[str]]:
    """Alternating rounds with and without the funnel counting; the lead ids routed."""
    groups = leads_module._funnel_groups
    out: dict[str, list[float]] = {"route": [], "route, no funnel": [], "srv µs": [],
                                   "srv µs, no funnel": [], "cpu": [], "cpu, no funnel": [],
                                   "rt": []}
    ids: list[str] = []
    n = args.leads // (2 * args.rounds)
    base = 0
    for _ in range(args.rounds):
        for funnel in (True, False):
            leads_module._funnel_groups = groups if funnel else (lambda req, ev: ())
            suffix = "" if funnel else ", no funnel"

            async def new(i: int, start: int = base, keep: bool = funnel) -> None:
                outcome, decision, _ = await leads.route(mql_lead(start + i), body=b"x")
                assert outcome == "created" and decision is not None
                if keep:
                    ids.append(decision.lead_id)
            calls, usec = await evalsha_usec(store)
            rate, cpu, trips = await timed(n, args.concurrency, store, new)
            calls2, usec2 = await evalsha_usec(store)
            out["route" + suffix].append(rate)
            out["cpu" + suffix].append(cpu)
            out["srv µs" + suffix].append((usec2 - usec) / max(1, calls2 - calls))
            if funnel:
                out["rt"].append(trips)
            base += n
    leads_module._funnel_groups = groups
    return out, ids


async def outcomes_rate(args: argparse.Namespace, store: Store, service: OutcomeService,
                        ids: list[str]) -> tuple[float, float, float, float]:
    rng = random.Random(7)
    work: list[tuple[str, OutcomeIn]] = []
    for lead_id in ids:
        at = NOW + dt.timedelta(hours=rng.randint(1, 48))
        work.append((lead_id, OutcomeIn(stage="meeting", at=at)))
        work.append((lead_id, OutcomeIn(stage="opportunity", at=at + dt.timedelta(days=2))))
        if rng.random() < 0.4:
            work.append((lead_id, OutcomeIn(stage="won", at=at + dt.timedelta(days=9),
                                            amount=str(rng.randint(1000, 90000)),
                                            currency="EUR", outcome_id=f"w-{lead_id}")))
    rng.shuffle(work)
    calls, usec = await evalsha_usec(store)
    rate, cpu, trips = await timed(len(work), args.concurrency, store,
                                   lambda i: service.record(*work[i]))
    calls2, usec2 = await evalsha_usec(store)
    return rate, cpu, trips, (usec2 - usec) / max(1, calls2 - calls)


async def write_aggregates(store: Store, args: argparse.Namespace, days: list[str]) -> int:
    """Per-day hashes as the scripts keep them, for ``--agg-leads`` leads over ``days``."""
    rng = random.Random(3)
    per_day = args.agg_leads // len(days)
    pairs = [("routed", "accepted"), ("accepted", "contacted"), ("contacted", "meeting"),
             ("meeting", "opportunity"), ("opportunity", "won"), ("routed", "lost"),
             ("routed", "won")]
    fields_written = 0
    for day in days:
        batch: list[tuple[Any, ...]] = []
        routed: list[Any] = []
        for dim in FUNNEL_DIMS:
            flat: list[Any] = []
            for g in range(args.groups):
                group = f"{dim}-{g}"
                n = per_day // args.groups
                for k, stage in enumerate(("accepted", "contacted", "meeting", "opportunity",
                                           "won", "lost")):
                    flat += [f"{group}\x1fs\x1f{stage}", max(1, n // (k + 2))]
                for a, b in pairs:
                    count = max(1, n // 3)
                    centre = rng.randint(8 * BUCKETS_PER_DOUBLING, 20 * BUCKETS_PER_DOUBLING)
                    spread = min(count, 10 * BUCKETS_PER_DOUBLING)
                    lanes = [0] * (centre + spread)
                    for k in range(centre - spread // 2, centre + spread // 2):
                        lanes[k] = 1 + count // spread
                    flat += [f"{group}\x1fv\x1f{a}\x1f{b}",
                             (count * 3_600_000).to_bytes(8, "little")
                             + array.array("I", lanes).tobytes()]
                for cur in ("EUR", "USD"):
                    flat += [f"{group}\x1fa\x1f{cur}", 1_000_000_000, f"{group}\x1fw\x1f{cur}",
                             max(1, n // 20)]
            fields_written += len(flat) // 2
            batch.append(("HSET", store.keys.funnel(dim, day), *flat))
        # The commit's combinations of groups: --combos a day (the leads spread over them).
        for _ in range(args.combos):
            combo = "\x1f".join(f"{d}-{rng.randrange(args.groups)}" for d in FUNNEL_DIMS)
            routed += [combo, per_day // args.combos]
        batch.append(("HSET", store.keys.funnel_routed(day), *routed))
        batch.append(("PEXPIRE", store.keys.funnel_routed(day), 86_400_000))
        fields_written += len(routed) // 2
        await store.wire.batch(batch)
    return fields_written


async def funnel_latency(args: argparse.Namespace, store: Store,
                         service: FunnelService) -> tuple[int, dict[str, tuple[float, float]]]:
    start = dt.date(2025, 1, 1)
    days = [(start + dt.timedelta(days=i)).isoformat() for i in range(args.days)]
    fields = await write_aggregates(store, args, days)
    out = {}
    until = start + dt.timedelta(days=args.days - 1)
    t = time.perf_counter()  # the first report folds the past days' combinations, once
    await service.report(start, until, "segment")
    out["(first, folds)"] = ((time.perf_counter() - t) * 1000,) * 2
    for dim in FUNNEL_DIMS:
        times = []
        for _ in range(args.queries):
            t = time.perf_counter()
            report = await service.report(start, until, dim)
            times.append((time.perf_counter() - t) * 1000)
        assert report.total.routed > 0 and len(report.groups) == args.groups
        times.sort()
        out[dim] = (statistics.median(times), times[int(0.95 * (len(times) - 1))])
    return fields, out


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules"
        shutil.copytree(ROOT / "rules", rules)
        valkey = EmbeddedValkey(Path(tmp) / "valkey")
        url = valkey.start()
        try:
            manager = RulesManager(rules, require_tests=False)
            manager.load_initial()
            store = await Store.connect(url, retention=dt.timedelta(days=400))
            leads = LeadService(store=store, rules=manager, settings=Settings(redis_url=url),
                                clock=lambda: NOW)
            outcomes = OutcomeService(store, rules=manager,
                                      clock=lambda: NOW + dt.timedelta(days=30))
            funnel = FunnelService(store, rules=manager, clock=lambda: NOW)
            rounds, ids = await route_rounds(args, store, leads)
            o_rate, o_cpu, o_trips, o_srv = await outcomes_rate(args, store, outcomes, ids)
            fields, lat = await funnel_latency(args, store, funnel)
            await store.close()
        finally:
            valkey.stop()
    med = {k: statistics.median(v) for k, v in rounds.items()}
    print(f"shipped rules, concurrency {args.concurrency}, {args.rounds} alternating rounds of "
          f"{args.leads // (2 * args.rounds)} leads each")
    print(f"{'path':<20} {'per s':>10} {'CPU µs':>10} {'RT/call':>8} {'Valkey µs':>10}")
    print(f"{'route':<20} {med['route']:>10,.0f} {med['cpu']:>10,.0f} {med['rt']:>8.2f} "
          f"{med['srv µs']:>10,.1f}")
    print(f"{'route, no funnel':<20} {med['route, no funnel']:>10,.0f} "
          f"{med['cpu, no funnel']:>10,.0f} {'':>8} {med['srv µs, no funnel']:>10,.1f}")
    print(f"{'outcome':<20} {o_rate:>10,.0f} {o_cpu:>10,.0f} {o_trips:>8.2f} {o_srv:>10,.1f}")
    print(f"funnel counting at commit: leads/s x{med['route'] / med['route, no funnel']:.3f}, "
          f"Valkey µs per commit +{med['srv µs'] - med['srv µs, no funnel']:.1f} "
          f"(median of {args.rounds} pairs)")
    print(f"outcomes/s ÷ leads/s: {o_rate / med['route']:.2f}")
    print(f"GET /v1/funnel (service call) over {args.agg_leads:,} leads, {args.days} days, "
          f"{args.groups} groups per dimension ({fields:,} aggregate fields in all):")
    for dim, (p50, p95) in lat.items():
        print(f"  by={dim:<10} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--leads", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--agg-leads", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--groups", type=int, default=12)
    parser.add_argument("--combos", type=int, default=1000,
                        help="distinct combinations of groups routed per day")
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--tune-leads", type=int, default=100_000,
                        help="then `rules tune` over this many leads (loadtests/bench_tune.py; "
                        "0: skip)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments))
    if arguments.tune_leads:
        from bench_tune import tune_bench  # its own Valkey: the tune's read, fit and replay

        asyncio.run(tune_bench(arguments.tune_leads))
