"""What Python's garbage collector costs a worker: two services side by side, one setting apart.

    uv run python loadtests/gc_ab.py [--a 700] [--b 50000] [--connections 32] [--rounds 4]

Needs Debian's ``wrk``. Two real services (one uvicorn worker each, pinned to CPU 0; wrk and the
embedded Valkey they share on CPU 1) that differ only in ``LEADROUTER_GC_THRESHOLD``: ``--a``
(default 700, Python's own) and ``--b`` (default 50,000, the service's default). wrk measures
them in alternating rounds (this VM's speed drifts by +-20% over minutes; pairs of rounds
next to each other see the same machine). Printed per round: leads/s, server CPU per request
and resident memory (/proc) and, from ``gc.callbacks`` inside each server, collections per
lead and their time per lead, per generation; then the B/A ratio of each pair of rounds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "loadtests"))

from bench_service import (  # noqa: E402
    cpu_seconds,
    pinned_valkey,
    service_env,
    services,
    write_bodies,
    wrk,
)

# Runs in each server process: record every collection, then hand over to uvicorn.
_LAUNCH = """
import gc, json, sys, time
out, start, stats = sys.argv.pop(1), [0.0], {"n": [0, 0, 0], "s": [0.0, 0.0, 0.0]}
def record(phase, info):
    if phase == "start":
        start[0] = time.perf_counter()
        return
    g = info["generation"]
    stats["n"][g] += 1
    stats["s"][g] += time.perf_counter() - start[0]
    with open(out, "w") as f:
        json.dump(stats, f)
gc.callbacks.append(record)
import uvicorn.main
sys.argv[0] = "uvicorn"
uvicorn.main.main()
"""


def _gc(path: Path) -> dict[str, list[float]]:
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return {"n": [0, 0, 0], "s": [0.0, 0.0, 0.0]}


def _rss_mib(pid: int) -> float:
    """Resident memory now: rarer collections must not let garbage pile up."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", type=int, default=700, help="GC threshold of service A")
    ap.add_argument("--b", type=int, default=50_000, help="GC threshold of service B")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    write_bodies(5000)
    with pinned_valkey("lr-gc-") as (url, tmp):
        thresholds = {"A": args.a, "B": args.b}
        stats = {name: tmp / f"gc-{name}.json" for name in thresholds}
        envs = {name: {**service_env(url), "LEADROUTER_GC_THRESHOLD": str(threshold)}
                for name, threshold in thresholds.items()}
        launchers = {name: ("-c", _LAUNCH, str(path)) for name, path in stats.items()}
        with services(envs, warm_connections=args.connections, warm_seconds=2,
                      launchers=launchers) as servers:
            print(f"A: LEADROUTER_GC_THRESHOLD={args.a}, B: {args.b}; wrk -c{args.connections}, "
                  f"{args.duration}s per round")
            pairs: list[dict[str, float]] = []
            for rnd in range(args.rounds):
                pair: dict[str, float] = {}
                for name in ("A", "B") if rnd % 2 == 0 else ("B", "A"):
                    proc, target = servers[name]
                    before, cpu = _gc(stats[name]), cpu_seconds(proc.pid)
                    r = wrk(target, args.duration, args.connections)
                    after, n = _gc(stats[name]), max(r["rps"] * args.duration, 1)
                    pair[name] = r["rps"]
                    per_gen = "  ".join(
                        f"gen{g} {(after['n'][g] - before['n'][g]) / n:.3f}/lead "
                        f"{(after['s'][g] - before['s'][g]) / n * 1e6:5.1f} us/lead"
                        for g in range(3))
                    print(f"  round {rnd + 1} {name}: {r['rps']:7,.0f} leads/s  CPU "
                          f"{(cpu_seconds(proc.pid) - cpu) / n * 1e6:4.0f} us/lead  RSS "
                          f"{_rss_mib(proc.pid):5.1f} MiB  {per_gen}", flush=True)
                pairs.append(pair)
            ratios = sorted(p["B"] / p["A"] for p in pairs)
            print("B / A per pair of rounds: " + ", ".join(f"{x:.2f}" for x in ratios)
                  + f"; median {ratios[len(ratios) // 2]:.2f}")

if __name__ == "__main__":
    main()
