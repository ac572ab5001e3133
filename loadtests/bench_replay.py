"""Replay benchmark: stored leads/s replayed end to end on one core, beside the engine's rate.

    uv run python loadtests/bench_replay.py [--leads 100000] [--sample 5000] [--profile]

1. starts an embedded valkey-server (pinned to CPU 1) and routes ``--leads`` varied synthetic
   leads (loadtests/bench_engine.py's generator, engagement on: a third of the people have
   events first) through the real LeadService with the shipped rules, the clock moving on a
   few seconds per lead, so every commit keeps its input and pick facts;
2. on CPU 0: the engine's ``evaluate()`` rate over the same leads and snapshots (decoded
   beforehand, untimed), then ``ReplayService.run`` over all of them end to end — paged
   reads from Redis, decoding, ``decide()``, the simulated pick, a small aggregation (status
   transitions, owner changes) — as it was before the replay-only path (:func:`as_before`:
   stored leads normalised again, full ``decide()`` with explanation and SLA deadlines) and as
   shipped, in the same run, best of ``--rounds``; and as the CLI and the API run it, into
   the full report (:func:`report_rate`: ``collect()``, ``ReportBuilder.finish()`` included);
3. the memory the change costs: ``MEMORY USAGE`` of ``--sample`` lead hashes with and without
   the ``input`` and ``pick`` fields, and of the arrival index per lead.

4. the floor: the least any Python replay over these stored leads can do, measured in the same
   run — a bare loop that only reads the pages (``arrivals`` + ``read_stored``), then also
   decodes each input (``decode_stored``), then also prepares the engine's snapshot (traits,
   windows), then also evaluates and compares the compact committed decision: no pick
   simulation, no comparison beyond that, no items, no aggregation (:func:`floor_rate`).

``--profile`` prints the replay's cProfile top functions. ``--ab N``: the hot-path cost instead
— N-lead rounds through the same LeadService, alternately keeping the inputs (as shipped) and
not (``encode_input`` patched to give ``b""``: the commit script then writes no input, no pick
facts, no index entry: the behaviour before), printing client CPU and Valkey CPU per lead
per round and the median ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import cProfile
import datetime as dt
import os
import platform
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "loadtests"))

from bench_engine import synthetic_leads  # noqa: E402

from router.intake.events import EventIn  # noqa: E402
from router.services.decide import apply_traits, engine_snapshot  # noqa: E402
from router.services.decision_input import decode_input, decode_stored  # noqa: E402
from router.services.engagement import EngagementService  # noqa: E402
from router.services.leads import LeadService  # noqa: E402
from router.services.replay import ReplayService  # noqa: E402
from router.services.replay_model import ReplayedLead, ReplayQuery  # noqa: E402
from router.services.replay_report import collect  # noqa: E402
from router.services.rules import RulesManager  # noqa: E402
from router.settings import Settings  # noqa: E402
from router.state.embedded import EmbeddedValkey  # noqa: E402
from router.state.engagement import EngagementStore  # noqa: E402
from router.state.inputs import arrival_pages, read_stored  # noqa: E402
from router.state.store import Store  # noqa: E402

T0 = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)  # a Monday
EVENTS = ["demo_requested", "pricing_page_viewed", "webinar_attended", "email_clicked"]


def _pin(pid: int, cpu: int) -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(pid, {cpu})


async def route(store: Store, manager: RulesManager, n: int, *, events: bool = True) -> None:
    clock = [T0]
    engagement = EngagementService(state=EngagementStore(store), rules=manager,
                                   clock=lambda: clock[0])
    leads = LeadService(store=store, rules=manager, settings=Settings(), clock=lambda: clock[0],
                        engagement=engagement.state.limits, rescore=engagement.after_commit)
    rng = random.Random(3)
    batch = 64
    for start in range(0, n, batch):
        clock[0] += dt.timedelta(seconds=rng.randint(1, 5) * batch)
        chunk = [lead for lead, _ in synthetic_leads(min(batch, n - start), seed=start)]
        for lead in chunk:
            if events and lead.email and rng.random() < 0.33:
                await engagement.ingest(EventIn(event=rng.choice(EVENTS), email=lead.email,
                                                timestamp=clock[0]))
        answers = await asyncio.gather(*(leads.route(lead, body=b"x") for lead in chunk))
        assert all(a[0] == "created" for a in answers), answers[0]


async def engine_rate(store: Store, manager: RulesManager) -> tuple[float, int]:
    """evaluate() over every stored lead's input (decoded first, untimed)."""
    ruleset = manager.current
    evaluator = manager.evaluator(ruleset)
    cases = []
    ids = await store.wire.call("ZRANGE", store.keys.arrivals, 0, -1)
    for start in range(0, len(ids), 1000):
        raws = await store.wire.batch([("HGET", store.keys.lead(i.decode()), "input")
                                       for i in ids[start:start + 1000]])
        for raw in raws:
            inp = decode_input(raw)
            cases.append((inp.lead, engine_snapshot(ruleset, inp.snapshot), inp.snapshot.now))
    t = time.process_time()
    for lead, snap, now in cases:
        evaluator(lead, snap, now=now)
    return len(cases) / (time.process_time() - t), len(cases)


FLOOR = ("read", "decode", "prepare", "evaluate")


async def floor_rate(store: Store, manager: RulesManager, stage: str) -> float:
    """Leads/s of a bare loop over the stored leads that stops after ``stage`` of
    :data:`FLOOR` (each includes the ones before it): the same pages of 500 the replay reads,
    the same decoding, the traits and windows the replay prepares, ``evaluate()`` and a
    comparison of status, score and matched rules with the committed decision. Nothing else:
    the replay's own work (pick simulation, outcomes, items) is what lies above this."""
    ruleset = manager.current
    evaluator = manager.evaluator(ruleset)
    depth = FLOOR.index(stage)
    n = same = 0
    t = time.process_time()
    async for page in arrival_pages(store, since_ms=None, until_ms=None, count=500):
        stored = await read_stored(store, page)
        n += len(stored)
        if depth == 0:
            continue
        for s in stored:
            assert s.input is not None
            inp = decode_stored(s.input)
            if depth == 1:
                continue
            snapshot, person = inp.snapshot, inp.snapshot.person
            lead = inp.lead if person is None else apply_traits(
                inp.lead, person.traits, person.traits_at, snapshot.lead_at)
            snap = engine_snapshot(ruleset, snapshot)
            if depth == 2:
                continue
            ev = evaluator(lead, snap, now=snapshot.now)
            c = inp.committed
            same += (c.status == ev.status and c.score == ev.score.total
                     and c.matched == ev.matched)
    rate = n / (time.process_time() - t)
    assert depth < 3 or same == n, (same, n)
    return rate


@contextlib.contextmanager
def as_before() -> Iterator[None]:
    """The replay as it was before the replay-only path (the "before" column): every stored
    lead normalised again on decoding (``decode_input``), and a full ``decide()`` — the
    explanation and the SLA deadlines computed for every lead."""
    import router.services.replay as replay
    from router.services.decide import decide_now

    fast = {name: getattr(replay, name) for name in ("decode_stored", "redecide")}
    quick = getattr(replay._Run, "_quick")  # noqa: B009

    async def full(*args: Any, **kwargs: Any) -> Any:
        return await fast["redecide"](*args, **{**kwargs, "explain": True})

    def full_now(run: Any, s: Any, inp: Any, facts: Any, ruleset: Any, evaluator: Any) -> Any:
        plan = decide_now(inp.lead, inp.snapshot, ruleset, evaluator=evaluator,
                          notes=inp.notes, spam=inp.spam, explain=True)
        return run._compared(s, inp, facts, ruleset, plan)

    patched = {"decode_stored": decode_input, "redecide": full}
    for name, value in patched.items():
        setattr(replay, name, value)
    setattr(replay._Run, "_quick", full_now)  # noqa: B010
    try:
        yield
    finally:
        for name, value in fast.items():
            setattr(replay, name, value)
        setattr(replay._Run, "_quick", quick)  # noqa: B010


async def replay_rate(store: Store, manager: RulesManager, profile: bool) -> tuple[float, int]:
    service = ReplayService(store, evaluator=manager.evaluator)
    transitions: collections.Counter[tuple[str, str]] = collections.Counter()
    moved = 0
    prof = cProfile.Profile() if profile else None
    t = time.process_time()
    if prof is not None:
        prof.enable()
    n = 0
    async for item in service.run(manager.current, ReplayQuery()):
        n += 1
        if isinstance(item, ReplayedLead):
            transitions[(item.before.status, item.after.status)] += 1
            moved += item.before.owner != item.after.owner
    if prof is not None:
        prof.disable()
    rate = n / (time.process_time() - t)
    assert moved == 0 and all(a == b for a, b in transitions), (moved, transitions)
    if prof is not None:
        pstats.Stats(prof).sort_stats("tottime").print_stats(18)
    return rate, n


async def report_rate(store: Store, manager: RulesManager) -> float:
    """The replay as the CLI and the API run it: ``collect()`` into the full report
    (ReportBuilder: every count, histogram, rule hits, samples), ``finish()`` included."""
    service = ReplayService(store, evaluator=manager.evaluator)
    t = time.process_time()
    report = await collect(service.run(manager.current, ReplayQuery()),
                           candidate=manager.current, base=manager.current)
    rate = report.replayed / (time.process_time() - t)
    assert report.changed == 0 and report.replayed > 0, report.changed
    return rate


async def memory(store: Store, sample: int) -> tuple[float, float, float]:
    """Mean MEMORY USAGE of sampled lead hashes with and without the replay's fields, and the
    arrival index's bytes per lead."""
    k = store.keys
    ids = [i.decode() for i in await store.wire.call("ZRANGE", k.arrivals, 0, -1)]
    picked = random.Random(1).sample(ids, min(sample, len(ids)))

    async def usage() -> float:
        sizes = await store.wire.batch([("MEMORY", "USAGE", k.lead(i), "SAMPLES", "0")
                                        for i in picked])
        return float(sum(sizes)) / len(sizes)

    index = await store.wire.call("MEMORY", "USAGE", k.arrivals, "SAMPLES", "0") / len(ids)
    with_inputs = await usage()
    await store.wire.batch([("HDEL", k.lead(i), "input", "pick") for i in picked])
    return with_inputs, await usage(), index


def _valkey_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def hot_path(store: Store, manager: RulesManager, pid: int, n: int, rounds: int) -> None:
    import router.services.leads as live  # the arm without inputs patches its encoder

    kept = getattr(live, "encode_input")  # noqa: B009
    ratios: list[tuple[float, float]] = []
    print(f"{'round':<6} {'arm':<14} {'client µs/lead':>15} {'valkey µs/lead':>15}")
    for r in range(rounds):
        got = {}
        for arm in (("kept", "none") if r % 2 == 0 else ("none", "kept")):
            setattr(live, "encode_input", kept if arm == "kept" else (lambda _: b""))  # noqa: B010
            t, v = time.process_time(), _valkey_cpu(pid)
            await route(store, manager, n, events=False)
            client = (time.process_time() - t) / n * 1e6
            server = (_valkey_cpu(pid) - v) / n * 1e6
            got[arm] = (client, server)
            print(f"{r:<6} {arm:<14} {client:>15.1f} {server:>15.1f}")
        ratios.append((got["kept"][0] / got["none"][0], got["kept"][1] / got["none"][1]))
    setattr(live, "encode_input", kept)  # noqa: B010
    client_r = statistics.median(c for c, _ in ratios)
    server_r = statistics.median(s for _, s in ratios)
    print(f"median kept/none: client CPU {client_r:.3f}, Valkey CPU {server_r:.3f}")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules"
        shutil.copytree(ROOT / "rules", rules)
        valkey = EmbeddedValkey(Path(tmp) / "valkey")
        url = valkey.start()
        _pin(valkey.pid, 1)
        _pin(0, 0)
        try:
            manager = RulesManager(rules, require_tests=False)
            manager.load_initial()
            store = await Store.connect(url, retention=dt.timedelta(days=400))
            if args.ab:
                await route(store, manager, 2000)  # warm
                await hot_path(store, manager, valkey.pid, args.ab, args.rounds)
                await store.close()
                return
            t = time.perf_counter()
            await route(store, manager, args.leads)
            print(f"routed {args.leads:,} leads in {time.perf_counter() - t:.0f} s "
                  f"({platform.python_implementation()} {platform.python_version()}, "
                  f"{os.cpu_count()} CPUs)")
            best_engine = best_replay = best_before = best_report = 0.0
            floors = dict.fromkeys(FLOOR, 0.0)
            for r in range(args.rounds):  # all of them alternate within each round
                engine, n = await engine_rate(store, manager)
                with as_before():
                    before, k = await replay_rate(store, manager, False)
                replay, m = await replay_rate(store, manager, args.profile and r == 0)
                assert n == m == k == args.leads, (n, m, k)
                best_engine, best_replay = max(best_engine, engine), max(best_replay, replay)
                best_before = max(best_before, before)
                best_report = max(best_report, await report_rate(store, manager))
                for stage in FLOOR:
                    floors[stage] = max(floors[stage], await floor_rate(store, manager, stage))
            print(f"{'engine evaluate()':<28} {best_engine:>10,.0f} leads/s "
                  f"{1e6 / best_engine:>7.1f} µs/lead")
            for stage in FLOOR:
                label = "floor: read" if stage == "read" else f"floor:  + {stage}"
                rate = floors[stage]
                print(f"{label:<28} {rate:>10,.0f} leads/s {1e6 / rate:>7.1f} µs/lead   "
                      f"({rate / best_engine:.0%} of the engine)")
            for name, rate in (("replay before (full decide)", best_before),
                               ("replay end to end", best_replay),
                               ("replay + the full report", best_report)):
                print(f"{name:<28} {rate:>10,.0f} leads/s {1e6 / rate:>7.1f} µs/lead   "
                      f"({rate / best_engine:.0%} of the engine; 1M leads in "
                      f"{1e6 / rate:.0f} s)")
            with_inputs, without, index = await memory(store, args.sample)
            print(f"lead hash (MEMORY USAGE, mean of {args.sample:,}): {without:,.0f} B "
                  f"before, {with_inputs:,.0f} B with input + pick facts "
                  f"(+{with_inputs - without:,.0f} B); arrival index {index:,.0f} B/lead; "
                  f"extra per lead {with_inputs - without + index:,.0f} B")
            await store.close()
        finally:
            valkey.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--ab", type=int, default=0, metavar="N")
    asyncio.run(main(parser.parse_args()))
