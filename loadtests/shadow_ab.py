"""What shadow mode costs live routing: two services side by side, one with
LEADROUTER_SHADOW_RULES, in one run.

    uv run python loadtests/shadow_ab.py [--duration 8] [--rounds 4] [--connections 32] \
        [--rate 500]

Needs Debian's ``wrk``. Two real services (one uvicorn worker each, pinned to CPU 0; wrk,
``openloop.py`` and the embedded Valkey they share on CPU 1, each service in its own database)
serving the shipped rules; B also shadows a candidate (the shipped rules with the MQL threshold
at 60 instead of 50: every lead is decided a second time, and some diverge). Each round
measures both in alternating order (this VM's speed drifts by +-20% over minutes): wrk at
``--connections`` (the closed-loop maximum), then ``openloop.py`` at ``--rate`` req/s (0:
skip). For B, ``/metrics`` says how many leads the shadow evaluated, how many diverged and how
many it dropped (a full queue), so the throughput is not bought by skipping the shadow work.
Printed: per round and service leads/s and server CPU per lead, fixed-rate p50/p99; then B/A of
leads/s and of CPU per lead per round, with their medians.

``--micro N``: instead, the shadow's own work per lead in-process, without HTTP or Redis
(``ShadowService.submit`` on the request's path, then the background evaluation: decoding the
stored input and deciding it with the candidate) over N varied leads, beside live ``decide()``
of the same leads — a figure this shared VM's noise does not swamp.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "loadtests"))

from bench_service import (  # noqa: E402
    cpu_seconds,
    open_loop,
    pinned_valkey,
    service_env,
    services,
    write_bodies,
    wrk,
)


def shadow_rules() -> Path:
    """A copy of the shipped rules with the MQL threshold raised from 50 to 60."""
    target = Path(tempfile.mkdtemp(prefix="lr-shadow-rules-"))
    for path in (ROOT / "rules").glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        if path.name == "scoring.yaml":
            assert '"score >= 50"' in text
            text = text.replace('"score >= 50"', '"score >= 60"')
        (target / path.name).write_text(text, encoding="utf-8")
    return target


def shadow_counts(lead_url: str) -> dict[str, float]:
    """The B service's shadow counters, from its /metrics."""
    url = lead_url.rsplit("/v1/", 1)[0] + "/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    out = {"evaluations": 0.0, "divergences": 0.0, "dropped": 0.0, "errors": 0.0,
           "created": 0.0}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        if name.startswith("leadrouter_shadow_evaluations_total"):
            out["evaluations"] += float(value)
        elif name.startswith("leadrouter_shadow_divergences_total"):
            out["divergences"] += float(value)
        elif name.startswith("leadrouter_shadow_errors_total"):
            out["dropped" if 'stage="dropped"' in name else "errors"] += float(value)
        elif name.startswith("leadrouter_lead_outcomes_total") and 'outcome="created"' in name:
            out["created"] += float(value)
    return out


def micro(n: int) -> None:
    """The shadow's cost per lead in-process (see the module doc)."""
    import asyncio
    import datetime as dt
    import time

    from bench_engine import synthetic_leads

    from router.engine.backend import compiled_evaluator
    from router.engine.loader import load_directory
    from router.intake.config import compile_intake
    from router.services.decide import DecisionSnapshot, decide
    from router.services.decision_input import DecisionInput, committed_of, encode_input
    from router.services.shadow import ShadowService

    live = load_directory(ROOT / "rules", intake=compile_intake)
    evaluate = compiled_evaluator(live)
    now = dt.datetime(2026, 11, 24, 17, 0, tzinfo=dt.UTC)
    shadow = ShadowService(shadow_rules(), max_queue=n)  # every lead queued, none dropped
    assert shadow.load()

    async def run() -> None:
        items = []
        for lead, _ in synthetic_leads(n, seed=11):
            snap = DecisionSnapshot(now=now)
            plan = await decide(lead, snap, live, evaluator=evaluate)
            raw = encode_input(DecisionInput(lead, snap, (), None, "api", live.version,
                                             committed_of(plan.evaluation)))
            items.append((lead, snap, raw, plan))
        t0 = time.perf_counter()
        for lead, snap, _, _ in items:
            await decide(lead, snap, live, evaluator=evaluate)
        t1 = time.perf_counter()
        for _, _, raw, plan in items:
            shadow.submit(raw, plan)
        t2 = time.perf_counter()
        assert await shadow.drain() == n
        t3 = time.perf_counter()
        print(f"{n:,} varied leads, shipped rules (live) and MQL at 60 (shadow), one core:")
        print(f"  live decide():              {(t1 - t0) / n * 1e6:6.1f} us/lead")
        print(f"  shadow submit (request path): {(t2 - t1) / n * 1e6:6.2f} us/lead")
        print(f"  shadow evaluation (background): {(t3 - t2) / n * 1e6:6.1f} us/lead "
              "(decode the stored input, decide() without the explanation, compare, count)")

    asyncio.run(run())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--micro", type=int, default=0, metavar="N",
                    help="measure the shadow's work per lead in-process over N leads instead")
    ap.add_argument("--rate", type=float, default=500.0,
                    help="fixed rate of the latency phase, req/s (0: no latency phase)")
    ap.add_argument("--duration", type=int, default=8, help="seconds per phase")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--connections", type=int, default=32, help="wrk concurrency")
    args = ap.parse_args()
    if args.micro:
        micro(args.micro)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    write_bodies(5000)
    candidate = shadow_rules()
    with pinned_valkey("lr-shadow-ab-") as (url, _):
        base = url.rsplit("=", 1)[0] + "=" if "?db=" in url else url.rsplit("/", 1)[0] + "/"
        envs = {"A": service_env(f"{base}1"),
                "B": {**service_env(f"{base}2"), "LEADROUTER_SHADOW_RULES": str(candidate)}}
        with services(envs, warm_connections=args.connections) as servers:
            print(f"A: no shadow, B: LEADROUTER_SHADOW_RULES (shipped rules, MQL at 60); "
                  f"wrk -c{args.connections}, {args.rate:,.0f} req/s fixed, {args.duration}s "
                  "per phase")
            ratios: list[float] = []
            cpu_ratios: list[float] = []
            for rnd in range(args.rounds):
                order = ("A", "B") if rnd % 2 == 0 else ("B", "A")
                rps: dict[str, float] = {}
                cpu: dict[str, float] = {}
                for name in order:
                    proc, target = servers[name]
                    seen = shadow_counts(target) if name == "B" else None
                    start = cpu_seconds(proc.pid)
                    r = wrk(target, args.duration, args.connections)
                    if r["non2xx"]:
                        sys.exit(f"{name}: {r['non2xx']:.0f} answers were not 2xx: fix the "
                                 "setup before reading any figure")
                    rps[name] = r["rps"]
                    cpu[name] = (cpu_seconds(proc.pid) - start) / max(r["rps"] * args.duration,
                                                                       1)
                    extra = ""
                    if seen is not None:
                        now = shadow_counts(target)
                        d = {k: now[k] - seen[k] for k in now}
                        extra = (f"  shadow: {d['evaluations']:,.0f} evaluated of "
                                 f"{d['created']:,.0f} created, {d['divergences']:,.0f} "
                                 f"divergences, {d['dropped']:,.0f} dropped, "
                                 f"{d['errors']:,.0f} errors")
                    print(f"round {rnd + 1} {name}  wrk: {r['rps']:7,.0f} leads/s  CPU "
                          f"{cpu[name] * 1e6:4.0f} us/lead{extra}", flush=True)
                if args.rate:
                    for name in order:
                        proc, target = servers[name]
                        start = cpu_seconds(proc.pid)
                        fixed = open_loop(target, args.duration, args.rate, 256)
                        per = (cpu_seconds(proc.pid) - start) / max(fixed.completed, 1)
                        pct = fixed.latency_pct
                        print(f"round {rnd + 1} {name}  fixed: p50 {pct['p50']:5.2f}  p99 "
                              f"{pct['p99']:6.2f} ms  CPU {per * 1e6:4.0f} us/lead",
                              flush=True)
                ratios.append(rps["B"] / max(rps["A"], 1))
                cpu_ratios.append(cpu["B"] / max(cpu["A"], 1e-9))
            print("leads/s B/A per round: " + ", ".join(f"{r:.2f}" for r in ratios)
                  + f" (median {statistics.median(ratios):.2f}); CPU per lead B/A: "
                  + ", ".join(f"{r:.2f}" for r in cpu_ratios)
                  + f" (median {statistics.median(cpu_ratios):.2f})")
    shutil.rmtree(candidate, ignore_errors=True)


if __name__ == "__main__":
    main()
