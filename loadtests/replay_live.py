"""Does an API replay slow live routing on the same worker? (issue 17, item 2)

    uv run python loadtests/replay_live.py [--leads 30000] [--rounds 4] [--rate 200] \
        [--duration 10]

One real service (one uvicorn worker pinned to CPU 0; the embedded Valkey, ``openloop.py`` and
the replay client on CPU 1) with the shipped rules and an admin token. Before it starts,
``--leads`` stored leads are routed in-process into its Valkey database by the real
LeadService (loadtests/bench_replay.py ``route()``: its clock starts on 2026-11-23 and moves
1-5 s per lead). Each replay is ``POST /v1/rules/replay`` with the candidate rules in the body
(the shipped rules with the MQL threshold at 60, like shadow_ab.py) and ``since``/``until``
around the seeded leads only, so the live leads of the run never enter it; every answer must
say ``replayed`` = ``--leads``.

Each of ``--rounds`` rounds runs two arms in alternating order (this VM drifts over minutes):
A = ``openloop.py`` at ``--rate`` leads/s for ``--duration`` s, nothing else; B = the same
while replays run back to back in a background thread (one starts with the arm, the next as
soon as one ends, until the open loop ends; the last one is waited for). Printed: per round
and arm the live p50/p99/max latency (from the intended send, openloop.py) and leads/s, the
worker's CPU seconds during the open loop; B/A of p50 and p99 per round with their medians;
and the replays' leads/s inside the service (replayed / wall time of the request, which also
compiles the candidate rules: the fixed cost is shown by a ``limit: 1`` replay) under live
load, beside a replay alone before the rounds — the price the replay pays for yielding.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "loadtests"))

import msgspec  # noqa: E402
from bench_replay import T0, route  # noqa: E402
from bench_service import (  # noqa: E402
    APP,
    cpu_seconds,
    free_port,
    open_loop,
    pinned_valkey,
    service_env,
    start_server,
    stop,
    write_bodies,
)
from openloop import Result  # noqa: E402
from shadow_ab import shadow_rules  # noqa: E402

from router.services.rules import RulesManager  # noqa: E402
from router.state.inputs import complete_backfill  # noqa: E402
from router.state.store import Store  # noqa: E402

TOKEN = "replay-live-benchmark"
SPAN = 5 * 64  # route(): its clock moves on by at most 5 s per lead, 64 leads a batch
RETENTION = 400 * 86400  # seconds: the seeded leads stay in the window whatever the date


class _Replayed(msgspec.Struct):
    replayed: int


async def seed(url: str, n: int) -> None:
    """``n`` leads routed by the real LeadService into ``url``'s database; then the arrival
    backfill's marker, so the service's start-up scan has nothing to do during the rounds."""
    manager = RulesManager(ROOT / "rules", require_tests=False)
    manager.load_initial()
    store = await Store.connect(url, retention=dt.timedelta(seconds=RETENTION))
    try:
        await route(store, manager, n)
        await complete_backfill(store)
    finally:
        await store.close()


def replay_body(n: int, *, limit: int | None = None) -> bytes:
    """The request: the candidate rules as files, the seeded leads' window."""
    folder = shadow_rules()
    try:
        files = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.yaml"))}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    until = T0 + dt.timedelta(seconds=SPAN * (n // 64 + 1) + 1)
    if T0 <= dt.datetime.now(dt.UTC) <= until:
        sys.exit("the live leads of this run would fall in the seeded leads' window: "
                 "use fewer --leads")
    body: dict[str, object] = {"files": files, "since": T0.isoformat(),
                               "until": until.isoformat(), "format": "json"}
    if limit is not None:
        body["limit"] = limit
    return msgspec.json.encode(body)


def replay_once(base: str, body: bytes) -> tuple[float, int]:
    """One ``POST /v1/rules/replay``: its wall seconds and the leads it replayed."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=600)
    try:
        start = time.perf_counter()
        conn.request("POST", "/v1/rules/replay", body=body, headers={
            "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        wall = time.perf_counter() - start
    finally:
        conn.close()
    if resp.status != 200:
        raise RuntimeError(f"replay answered {resp.status}: {data[:600]!r}")
    return wall, msgspec.json.decode(data, type=_Replayed).replayed


class Replays(threading.Thread):
    """Replays back to back until :attr:`stop` is set (the one running then finishes)."""

    def __init__(self, base: str, body: bytes) -> None:
        super().__init__(daemon=True)
        self.base, self.body = base, body
        self.stop = threading.Event()
        self.runs: list[tuple[float, int]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.runs.append(replay_once(self.base, self.body))
        except BaseException as exc:  # reported by the main thread
            self.error = exc


def arm(pid: int, url: str, args: argparse.Namespace, body: bytes | None
        ) -> tuple[Result, float, float, list[tuple[float, int]]]:
    """One arm: the open loop (with replays when ``body``): its result, the worker's CPU
    seconds and the wall seconds until the open loop ended, and the replays."""
    replays = Replays(url, body) if body is not None else None
    cpu, start = cpu_seconds(pid), time.perf_counter()
    if replays is not None:
        replays.start()
    try:
        result = open_loop(url, args.duration, args.rate, 256)
    finally:
        used, wall = cpu_seconds(pid) - cpu, time.perf_counter() - start
        if replays is not None:
            replays.stop.set()
            replays.join()
    if replays is not None and replays.error is not None:
        sys.exit(f"a replay failed: {replays.error}")
    if result.errors:
        sys.exit(f"{result.errors} live leads failed ({result.status}, connection errors "
                 f"{result.connection_errors}, unanswered {result.unanswered}): fix the setup "
                 "before reading any figure")
    return result, used, wall, replays.runs if replays is not None else []


def rates(runs: list[tuple[float, int]], n: int) -> list[float]:
    bad = [k for _, k in runs if k != n]
    if bad:
        sys.exit(f"a replay replayed {bad[0]:,} leads, not the {n:,} seeded: the window is wrong")
    return [k / wall for wall, k in runs]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--leads", type=int, default=30_000, help="stored leads to replay")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--rate", type=float, default=200.0, help="live leads/s (open loop)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per arm")
    args = ap.parse_args()
    if shutil.which("taskset") is None:
        sys.exit("taskset not found: apt-get install util-linux")
    write_bodies(5000)
    body, fixed_body = replay_body(args.leads), replay_body(args.leads, limit=1)
    with pinned_valkey("lr-replay-live-") as (vk_url, _):
        os.sched_setaffinity(0, {0})  # seeding, before the service: CPU 0 is free
        t = time.perf_counter()
        asyncio.run(seed(vk_url, args.leads))
        print(f"seeded {args.leads:,} leads in {time.perf_counter() - t:.0f} s", flush=True)
        os.sched_setaffinity(0, {1})  # the replay client beside Valkey and openloop
        env = {**service_env(vk_url), "LEADROUTER_ADMIN_TOKEN": TOKEN,
               "LEADROUTER_DECISION_RETENTION": str(RETENTION)}
        port = free_port()
        proc = start_server(APP, port, env, True)
        url = f"http://127.0.0.1:{port}/v1/leads"
        try:
            run(proc, url, args, body, fixed_body)
        finally:
            stop(proc)


def run(proc: subprocess.Popen[bytes], url: str, args: argparse.Namespace, body: bytes,
        fixed_body: bytes) -> None:
    n = args.leads
    open_loop(url, 3, args.rate, 256)  # warm-up (the store connects, caches fill)
    fixed = min(replay_once(url, fixed_body)[0] for _ in range(3))
    alone = max(rates([replay_once(url, body) for _ in range(3)], n))
    print(f"a replay's fixed cost (limit 1: rules compiled, report built): {fixed * 1e3:.0f} ms;"
          f" {n:,} leads alone: {alone:,.0f} leads/s (best of 3, no live load)")
    print(f"A: live leads only; B: the same while POST /v1/rules/replay ({n:,} leads, MQL at "
          f"60) runs back to back; {args.rate:,.0f} leads/s open loop, {args.duration} s per "
          "arm; latency in ms from the intended send")
    p50s: list[float] = []
    p99s: list[float] = []
    under: list[float] = []
    cpus: dict[str, list[float]] = {"A": [], "B": []}
    for rnd in range(args.rounds):
        got: dict[str, Result] = {}
        for name in ("A", "B") if rnd % 2 == 0 else ("B", "A"):
            result, used, wall, runs = arm(proc.pid, url, args,
                                           body if name == "B" else None)
            got[name] = result
            cpus[name].append(used)
            pct = result.latency_pct
            extra = ""
            if runs:
                speeds = rates(runs, n)
                under += speeds
                extra = (f"  replays: {len(runs)} ({min(w for w, _ in runs):.2f}-"
                         f"{max(w for w, _ in runs):.2f} s each), "
                         f"{statistics.median(speeds):,.0f} leads/s median")
            print(f"round {rnd + 1} {name}  p50 {pct['p50']:6.2f}  p99 {pct['p99']:7.2f}  max "
                  f"{pct['max']:7.2f}  {result.achieved_rate:6.1f} leads/s  worker CPU "
                  f"{used:5.2f} s of {wall:5.2f} s ({used / wall:4.0%}){extra}", flush=True)
        p50s.append(got["B"].latency_pct["p50"] / got["A"].latency_pct["p50"])
        p99s.append(got["B"].latency_pct["p99"] / got["A"].latency_pct["p99"])
    print("B/A p50 per round: " + ", ".join(f"{r:.2f}" for r in p50s)
          + f" (median {statistics.median(p50s):.2f}); p99: "
          + ", ".join(f"{r:.2f}" for r in p99s) + f" (median {statistics.median(p99s):.2f})")
    print(f"worker CPU per arm, median: A {statistics.median(cpus['A']):.2f} s, B "
          f"{statistics.median(cpus['B']):.2f} s")
    if under:
        med = statistics.median(under)
        print(f"replay leads/s inside the service under live load: median {med:,.0f} over "
              f"{len(under)} replays ({min(under):,.0f}-{max(under):,.0f}); alone {alone:,.0f}:"
              f" {med / alone:.0%} of it")


if __name__ == "__main__":
    main()
