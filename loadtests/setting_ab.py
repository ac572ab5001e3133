"""Two services one setting apart, side by side: leads/s, CPU per lead and fixed-rate latency.

    uv run python loadtests/setting_ab.py LEADROUTER_OPTIMISTIC_READS=true,false \
        [--rate 1000] [--duration 8] [--rounds 4] [--connections 32]

Needs Debian's ``wrk``. Two real services (one uvicorn worker each, pinned to CPU 0; wrk,
``openloop.py`` and the embedded Valkey they share on CPU 1, each service in its own database)
that differ only in the named setting. Each round measures both in alternating order (this
VM's speed drifts by +-20% over minutes; the two halves of a round see the same machine):
wrk at ``--connections`` (the closed-loop maximum), then ``openloop.py`` at ``--rate`` req/s
(``0``: skip). Printed per round and service: leads/s and server CPU per lead under wrk; p50,
p90, p99 and CPU per lead at the fixed rate; then A/B of leads/s per round.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("setting", help="NAME=A,B, e.g. LEADROUTER_OPTIMISTIC_READS=true,false")
    ap.add_argument("--rate", type=float, default=1000.0,
                    help="fixed rate of the latency phase, req/s (0: no latency phase)")
    ap.add_argument("--duration", type=int, default=8, help="seconds per phase")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--connections", type=int, default=32, help="wrk concurrency")
    args = ap.parse_args()
    name, _, values = args.setting.partition("=")
    pair = values.split(",")
    if not name.startswith("LEADROUTER_") or len(pair) != 2:
        sys.exit("give the setting as LEADROUTER_NAME=A,B (two values)")
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    write_bodies(5000)
    with pinned_valkey("lr-setting-ab-") as (url, _):
        base = url.rsplit("=", 1)[0] + "=" if "?db=" in url else url.rsplit("/", 1)[0] + "/"
        envs = {value: {**service_env(f"{base}{db}"), name: value}
                for db, value in enumerate(pair, start=1)}
        with services(envs, warm_connections=args.connections) as servers:
            print(f"A: {name}={pair[0]}, B: {pair[1]}; wrk -c{args.connections}, "
                  f"{args.rate:,.0f} req/s fixed, {args.duration}s per phase")
            ratios = []
            for rnd in range(args.rounds):
                order = pair if rnd % 2 == 0 else pair[::-1]
                rps: dict[str, float] = {}
                for value in order:
                    proc, target = servers[value]
                    cpu = cpu_seconds(proc.pid)
                    r = wrk(target, args.duration, args.connections)
                    rps[value] = r["rps"]
                    per = (cpu_seconds(proc.pid) - cpu) / max(r["rps"] * args.duration, 1)
                    print(f"round {rnd + 1} {value:>8s}  wrk: {r['rps']:7,.0f} leads/s  "
                          f"CPU {per * 1e6:4.0f} us/lead", flush=True)
                if args.rate:
                    for value in order:
                        proc, target = servers[value]
                        cpu = cpu_seconds(proc.pid)
                        fixed = open_loop(target, args.duration, args.rate, 256)
                        per = (cpu_seconds(proc.pid) - cpu) / max(fixed.completed, 1)
                        pct = fixed.latency_pct
                        print(f"round {rnd + 1} {value:>8s}  fixed: p50 {pct['p50']:5.2f}  p90 "
                              f"{pct['p90']:6.2f}  p99 {pct['p99']:6.2f} ms  CPU "
                              f"{per * 1e6:4.0f} us/lead", flush=True)
                ratios.append(rps[pair[1]] / max(rps[pair[0]], 1))
            print("leads/s B/A per round: " + ", ".join(f"{r:.2f}" for r in ratios)
                  + f" (median {statistics.median(ratios):.2f})")

if __name__ == "__main__":
    main()
