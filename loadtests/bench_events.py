"""Engagement events: what one worker ingests, and what an event that re-routes a lead costs.

    uv run python loadtests/bench_events.py [--events 20000] [--leads 2000] [--concurrency 16]

In one process against an embedded Valkey, through ``EngagementService.ingest`` (everything
``POST /v1/events`` does but HTTP, whose own cost is in the service benchmark), with the shipped
``rules/`` plus an ``engagement:`` section (five event types with decaying points):

* ``email, no lead``: events of people who have no lead yet (resolve nothing, one EVALSHA);
* ``anonymous``: events with only an anonymousId (one MGET for the alias, one EVALSHA);
* ``re-score``: an ``email_clicked`` (by email) for a person whose lead exists: record, read
  the lead, evaluate the rules, apply the new score with ``requalify.lua`` (nothing is
  reassigned); ``1st`` is a person's first event in this worker (the lead is read after the
  script), the other row the usual case (read in the same round trip);
* ``re-route``: a ``demo_requested`` that turns a nurture lead into an MQL: the same plus the
  pool pick, the SLA clock, history and outbox — the handoff;
* reference, same run: ``LeadService.route`` of a new lead whose person has events (the
  engagement read rides in the prefetch pipeline: still 2 round trips).

For each: events/s with N concurrent tasks on one event loop (one worker is CPU-bound), client
CPU µs per event (process time, Valkey runs in its own process), wall µs per event with one task
(latency), and Redis round trips per event (``Store.round_trips``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from leadrouter_sdk import Lead

from router.intake.events import EventIn
from router.services.engagement import EngagementService
from router.services.leads import LeadService
from router.services.rules import RulesManager
from router.settings import Settings
from router.state.embedded import EmbeddedValkey
from router.state.engagement import EngagementStore
from router.state.store import Store

ROOT = Path(__file__).resolve().parents[1]
NOW = dt.datetime(2026, 3, 3, 15, 0, tzinfo=dt.UTC)  # a Tuesday, working hours in NA and EMEA
ENGAGEMENT = """\
engagement:
  half_life: 14d
  events:
    demo_requested: {points: 30}
    pricing_page_viewed: {points: 5, cap: 20}
    webinar_attended: {points: 8, cap: 24}
    content_downloaded: {points: 3, cap: 12}
    email_clicked: 2
"""
TYPES = ("pricing_page_viewed", "webinar_attended", "content_downloaded", "email_clicked",
         "page_viewed")


def nurture_lead(i: int) -> Lead:
    """Scores 25 (SMB, core country, work email): nurture, in the marketing-nurture queue."""
    return Lead(email=f"person{i}@company{i % 300}.example", employees=50, country="US",
                company=f"Company {i % 300}")


async def timed(n: int, concurrency: int, store: Store,
                make: Callable[[int], Awaitable[Any]]) -> tuple[float, float, float]:
    """(per second, client CPU µs per call, round trips per call) of ``make(i)`` for i < n."""
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await make(i)

    trips = store.round_trips
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return n / wall, cpu / n * 1e6, (store.round_trips - trips) / n


async def latency(n: int, make: Callable[[int], Awaitable[Any]]) -> float:
    """Wall µs per call, one at a time."""
    t = time.perf_counter()
    for i in range(n):
        await make(i)
    return (time.perf_counter() - t) / n * 1e6


def row(name: str, rate: float, cpu: float, trips: float, wall: float) -> str:
    return f"{name:<16} {rate:>10,.0f} {cpu:>12,.0f} {wall:>12,.0f} {trips:>8.2f}"


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules"
        shutil.copytree(ROOT / "rules", rules)
        (rules / "engagement.yaml").write_text(ENGAGEMENT, encoding="utf-8")
        valkey = EmbeddedValkey(Path(tmp) / "valkey")
        url = valkey.start()
        try:
            manager = RulesManager(rules, require_tests=False)
            manager.load_initial()
            store = await Store.connect(url, retention=dt.timedelta(days=30))
            service = EngagementService(state=EngagementStore(store), rules=manager,
                                        clock=lambda: NOW)
            leads = LeadService(store=store, rules=manager, settings=Settings(redis_url=url),
                                clock=lambda: NOW, engagement=service.state.limits,
                                rescore=service.after_commit)
            await service.state.load_scripts()
            out = await run(args, store, leads, service)
            await store.close()
        finally:
            valkey.stop()
    ruleset_size = sum(len(s.rules) for s in manager.current.stages)
    print(f"engagement events, shipped rules ({ruleset_size} rules) + 5 decaying event types, "
          f"concurrency {args.concurrency}, fixed clock {NOW.isoformat()}")
    print(f"{'path':<16} {'events/s':>10} {'CPU µs/event':>12} {'wall µs (c=1)':>12} "
          f"{'RT/event':>8}")
    for line in out:
        print(line)


async def run(args: argparse.Namespace, store: Store, leads: LeadService,
              service: EngagementService) -> Sequence[str]:
    n, m, c = args.events, args.leads, args.concurrency
    ts = NOW - dt.timedelta(hours=1)

    def email_event(i: int) -> EventIn:
        return EventIn(event=TYPES[i % len(TYPES)], email=f"visitor{i % 5000}@x{i % 97}.example",
                       timestamp=ts, message_id=f"e{i}")

    async def warm(i: int) -> None:
        await service.ingest(EventIn(event="email_clicked", email=f"w{i}@warm.example"))

    await timed(500, c, store, warm)
    lines = []

    # 1. people with no lead yet
    rate, cpu, trips = await timed(n, c, store, lambda i: service.ingest(email_event(i)))
    wall = await latency(min(n, 2000), lambda i: service.ingest(email_event(n + i)))
    lines.append(row("email, no lead", rate, cpu, trips, wall))

    # 2. anonymous visitors
    def anon(i: int) -> EventIn:
        return EventIn(event="page_viewed", anonymous_id=f"anon-{i % 5000}", message_id=f"a{i}")
    rate, cpu, trips = await timed(n, c, store, lambda i: service.ingest(anon(i)))
    wall = await latency(min(n, 2000), lambda i: service.ingest(anon(n + i)))
    lines.append(row("anonymous", rate, cpu, trips, wall))

    # reference: new leads (their people have events: the engagement read is in the prefetch)
    async def new(i: int) -> None:
        outcome, decision, _ = await leads.route(nurture_lead(i), body=b"x")
        assert outcome == "created" and decision is not None and decision.status == "nurture", \
            decision
    rate, cpu, trips = await timed(m, c, store, new)
    wall = await latency(min(m, 500), lambda i: new(m + i))
    ref = row("POST lead (ref)", rate, cpu, trips, wall)
    total = m + min(m, 500)

    # 3. re-score: a click (by email, as Segment sends it) on a lead that stays nurture. The
    # first event of a person in this worker records, then reads the lead; later ones read
    # it in the same round trip (the worker remembers each person's lead).
    async def click(i: int) -> None:
        r = await service.ingest(EventIn(event="email_clicked",
                                         email=nurture_lead(i % total).email,
                                         message_id=f"c{i}"))
        assert r.lead is not None and r.lead.outcome in ("rescored", "superseded"), r
    rate, cpu, trips = await timed(total, c, store, click)
    lines.append(row("re-score, 1st", rate, cpu, trips, float("nan")))
    rate, cpu, trips = await timed(total, c, store, lambda i: click(total + i))
    wall = await latency(min(total, 500), lambda i: click(2 * total + i))
    lines.append(row("re-score", rate, cpu, trips, wall))

    # 4. re-route: a demo request turns each nurture lead into an MQL: routed, SLA started
    outcomes: list[str] = []

    async def demo(i: int) -> None:
        r = await service.ingest(EventIn(event="demo_requested", email=nurture_lead(i).email,
                                         message_id=f"d{i}"))
        assert r.lead is not None
        outcomes.append(r.lead.outcome)
    half = total // 2
    rate, cpu, trips = await timed(half, c, store, demo)
    wall = await latency(min(total - half, 500), lambda i: demo(half + i))
    assert set(outcomes) == {"requalified"}, set(outcomes)
    lines.append(row("re-route (MQL)", rate, cpu, trips, wall))
    assert len(outcomes) == half + min(total - half, 500)  # each handed over once
    lines.append(ref)
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    asyncio.run(main(parser.parse_args()))
