"""What a lead costs the worker at a fixed rate, over TCP and over the embedded Valkey's socket.

    uv run python loadtests/transport_ab.py [--rates 600,1000] [--duration 8] [--rounds 3]

Needs Debian's ``wrk``. One embedded Valkey (which listens on both) and two services, one
worker each pinned to CPU 0: ``tcp`` reaches Valkey on 127.0.0.1, ``unix`` through the data
dir's ``valkey.sock`` (what ``leadrouter serve`` does without ``--redis-url``). In alternating
phases, ``openloop.py`` offers each rate of ``--rates`` for ``--duration`` seconds; then wrk
measures each at -c32 (the closed-loop maximum). Printed per phase: the service's CPU per lead,
its read and write system calls per lead (/proc/PID/io), p50 and p99 from the intended send
time. The fixed-rate cost against the -c32 cost shows what "half the maximum" really asks.
"""

from __future__ import annotations

import argparse
import shutil
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


def _syscalls(pid: int) -> tuple[int, int]:
    fields = dict(line.split(": ") for line in
                  Path(f"/proc/{pid}/io").read_text().splitlines())
    return int(fields["syscr"]), int(fields["syscw"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="600,1000", help="fixed rates, comma-separated")
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    write_bodies(5000)
    with pinned_valkey("lr-transport-", port=0) as (url, tmp):
        socket = tmp / "valkey" / "valkey.sock"
        if not url.startswith("unix://") or not socket.is_socket():
            sys.exit(f"the embedded Valkey did not open its socket ({url})")
        tcp = "redis://127.0.0.1:" + (tmp / "valkey" / "valkey.port").read_text().strip()
        urls = {"tcp": f"{tcp}/1", "unix": f"unix://{socket}?db=2"}
        envs = {name: service_env(redis_url) for name, redis_url in urls.items()}
        with services(envs) as servers:
            phases = [("rate", float(r)) for r in args.rates.split(",")] + [("wrk", 32.0)]
            for rnd in range(args.rounds):
                for kind, value in phases:
                    for name in ("tcp", "unix") if rnd % 2 == 0 else ("unix", "tcp"):
                        proc, target = servers[name]
                        cpu, (reads, writes) = cpu_seconds(proc.pid), _syscalls(proc.pid)
                        if kind == "rate":
                            result = open_loop(target, args.duration, value, 256)
                            n = max(result.completed, 1)
                            tail = (f"p50 {result.latency_pct['p50']:5.2f} ms  "
                                    f"p99 {result.latency_pct['p99']:6.1f} ms")
                            label = f"{value:,.0f} leads/s"
                        else:
                            r = wrk(target, args.duration, int(value))
                            n = max(int(r["rps"] * args.duration), 1)
                            tail = f"{r['rps']:,.0f} leads/s (the maximum)"
                            label = "wrk -c32"
                        r1, w1 = _syscalls(proc.pid)
                        print(f"round {rnd + 1} {name:4s} {label:>14s}: CPU "
                              f"{(cpu_seconds(proc.pid) - cpu) / n * 1e6:4.0f} us/lead  reads "
                              f"{(r1 - reads) / n:4.2f} writes {(w1 - writes) / n:4.2f} per "
                              f"lead  {tail}", flush=True)


if __name__ == "__main__":
    main()
