"""Where a fixed-rate p99 comes from: GC pauses, event-loop stalls, Valkey's slow commands.

    uv run python loadtests/tail_probe.py [--rate 800] [--duration 15] [--no-aof-rewrite]

Needs Debian's ``wrk``. Set up like ``bench_service.py`` (embedded Valkey and the load on CPU 1,
one uvicorn worker on CPU 0, the same 5,000 varied lead bodies): a 10 s wrk phase grows the
store as the benchmark's sweep does, then ``openloop.py`` offers ``--rate`` req/s for
``--duration`` s. Printed for that window: openloop's latency report; the server's GC pauses
per generation (``gc.callbacks``) and its event-loop stalls (a task that sleeps 1 ms and records
every wake-up more than 2 ms late); Valkey's slowest commands (SLOWLOG over 3 ms) and LATENCY
events (forks for AOF rewrites among them). ``--no-aof-rewrite`` turns Valkey's automatic AOF
rewrites off for the window, to see the tail without them.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "loadtests"))


def serve(port: int, stats: Path) -> None:
    """The server side: the app under uvicorn, with GC and loop-stall recorders."""
    import uvicorn
    import uvloop

    pauses: list[tuple[float, int, float]] = []
    stalls: list[tuple[float, float]] = []
    started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append((time.time(), info["generation"],
                           (time.perf_counter() - started[0]) * 1000))

    async def watch() -> None:
        n = 0
        while True:
            n += 1
            if n % 500 == 0:  # written often: the process is stopped with a signal
                stats.write_text(json.dumps({"gc": pauses, "stalls": stalls}))
            t = time.perf_counter()
            await asyncio.sleep(0.001)
            late = (time.perf_counter() - t) * 1000 - 1
            if late > 2:
                stalls.append((time.time(), late))

    gc.callbacks.append(on_gc)
    server = uvicorn.Server(uvicorn.Config(
        "router.app.application:app_from_env", factory=True, port=port, loop="uvloop",
        http="httptools", access_log=False, log_level="warning"))
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.create_task(watch())
    loop.run_until_complete(server.serve())


def probe(args: argparse.Namespace) -> None:
    import bench_service as bench
    import redis

    bench.write_bodies(5000)
    with bench.pinned_valkey("lr-tail-") as (url, tmp):
        stats = tmp / "stats.json"
        env = {**os.environ, **bench.service_env(url)}
        port = bench.free_port()
        proc = subprocess.Popen(["taskset", "-c", "0", sys.executable, __file__, "--serve",
                                 str(port), "--stats", str(stats)], cwd=ROOT, env=env)
        client = redis.Redis.from_url(url)
        try:
            bench.wait_listening(proc, port, "the service")
            target = f"http://127.0.0.1:{port}/v1/leads"
            bench.wrk(target, 10, 64)
            client.config_set("slowlog-log-slower-than", 3000)
            client.config_set("slowlog-max-len", 1000)
            client.slowlog_reset()
            client.config_set("latency-monitor-threshold", 2)
            client.execute_command("LATENCY", "RESET")
            if args.no_aof_rewrite:
                client.config_set("auto-aof-rewrite-percentage", 0)
            begin = time.time()
            result = bench.open_loop(target, args.duration, args.rate, 256)
            end = time.time()
            time.sleep(1.5)  # one more write of the server's stats
            print(result.report())
            slow = sorted(client.slowlog_get(1000), key=lambda e: -e["duration"])
            print(f"Valkey commands over 3 ms: {len(slow)}")
            for entry in slow[:8]:
                print(f"  {entry['duration'] / 1000:6.1f} ms  {entry['command'][:60]!r}")
            for name, _, latest, worst, *_ in client.execute_command("LATENCY", "LATEST"):
                print(f"Valkey latency event {name.decode()}: latest {latest} ms, worst {worst} ms")
            data = json.loads(stats.read_text())
            for generation in (0, 1, 2):
                ms = [p for t, g, p in data["gc"] if g == generation and begin <= t <= end]
                if ms:
                    print(f"GC generation {generation}: {len(ms)} collections, longest "
                          f"{max(ms):.2f} ms, {sum(ms):.1f} ms in all")
            stalls = sorted(late for t, late in data["stalls"] if begin <= t <= end)
            print(f"event loop late by more than 2 ms: {len(stalls)} times; worst (ms): "
                  + ", ".join(f"{s:.1f}" for s in stalls[-8:]))
        finally:
            client.close()
            bench.stop(proc)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=800)
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--no-aof-rewrite", action="store_true")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--stats", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.stats)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    probe(args)


if __name__ == "__main__":
    main()
