"""Service benchmark: POST /v1/leads end to end vs a no-op litestar endpoint, in one run.

    uv run python loadtests/bench_service.py [--duration 10] [--connections 16]

Needs Debian's ``wrk`` (``apt-get install wrk``). What it does:

1. starts an embedded valkey-server and, one after the other, the real service and the no-op
   app (``loadtests/noop_app.py``: decode the same body into the same ``Lead``, answer JSON),
   each as one uvicorn worker (uvloop + httptools) pinned to CPU 0; wrk, ``openloop.py`` and
   Valkey run on CPU 1, so the server under test has a core to itself;
2. measures each one's maximum throughput with wrk (closed loop, varied lead bodies);
3. measures the service's latency at a fixed offered rate of half its maximum with
   ``loadtests/openloop.py`` (open loop, the same varied lead bodies, latency from each
   request's intended send time, so it is corrected for coordinated omission — at saturation
   a closed-loop tool only measures its own queue);
4. counts Redis round trips per lead by routing leads in-process through the same LeadService
   and reading the store's round-trip counter.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "loadtests"))

import msgspec  # noqa: E402
from bench_engine import synthetic_leads  # noqa: E402
from openloop import Result  # noqa: E402

from router.state.embedded import EmbeddedValkey  # noqa: E402

BENCH = ROOT / "loadtests" / ".bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_bodies(n: int) -> Path:
    BENCH.mkdir(exist_ok=True)
    path = BENCH / "bodies.txt"
    lines = [msgspec.json.encode(lead).decode() for lead, _ in synthetic_leads(n, seed=11)]
    path.write_text("\n".join(lines) + "\n")
    return path


def start_server(app: str, port: int, env: dict[str, str],
                 factory: bool) -> subprocess.Popen[bytes]:
    cmd = ["taskset", "-c", "0", sys.executable, "-m", "uvicorn", app, "--port", str(port),
           "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level",
           "warning"]
    if factory:
        cmd.append("--factory")
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{app} did not start on port {port}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-s", str(ROOT / "loadtests" / "leads.lua"), url],
        capture_output=True, text=True, check=True, env={**os.environ,
                                                          "BODIES": str(BENCH / "bodies.txt")},
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    pct = {p: _ms(v) for p, v in re.findall(r"\s(50|90|99)%\s+([\d.]+\w+)", out)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": pct.get("50", 0.0), "p99": pct.get("99", 0.0),
            "non2xx": float(errors.group(1)) if errors else 0.0}


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def open_loop(url: str, seconds: int, rate: float, connections: int) -> Result:
    """``loadtests/openloop.py`` on CPU 1: ``rate`` req/s for ``seconds``, varied lead bodies."""
    out = subprocess.run(
        ["taskset", "-c", "1", sys.executable, str(ROOT / "loadtests" / "openloop.py"), url,
         "--rate", f"{rate:.1f}", "--duration", str(seconds), "--connections",
         str(connections), "--bodies", str(BENCH / "bodies.txt"), "--json"],
        capture_output=True, text=True, check=True).stdout
    return msgspec.json.decode(out, type=Result)


async def round_trips(url: str, n: int) -> float:
    from leadrouter_sdk import Lead

    from router.leads import LeadService
    from router.reload import RulesManager
    from router.settings import Settings
    from router.state.store import Store

    store = await Store.connect(url)
    rules = RulesManager(ROOT / "rules", require_tests=False)
    rules.load_initial()
    service = LeadService(store=store, rules=rules, settings=Settings(),
                          clock=lambda: dt.datetime.now(dt.UTC))
    leads = [lead for lead, _ in synthetic_leads(n, seed=5)]
    before = store.round_trips
    for i, lead in enumerate(leads):
        body = msgspec.json.encode(lead)
        keyed = msgspec.structs.replace(lead, external_id=f"ext-{i}") if i % 2 else lead
        await service.route(keyed, body=body, idempotency_key=f"k-{i}" if i % 3 else None)
    trips = (store.round_trips - before) / len(leads)
    await store.close()
    assert isinstance(keyed, Lead)
    return trips


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--latency-duration", type=int, default=15)
    # Enough for ~300 ms of backlog at 800 req/s: a pool that runs dry during a server stall
    # still counts the wait in the latency, but offers the server less concurrency than real
    # independent clients would.
    ap.add_argument("--latency-connections", type=int, default=256,
                    help="connection pool of the fixed-rate phase (default 256)")
    args = ap.parse_args()
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install wrk util-linux")
    write_bodies(5000)
    tmp = Path(tempfile.mkdtemp(prefix="lr-bench-"))
    valkey = EmbeddedValkey(tmp / "valkey")
    url = valkey.start()
    subprocess.run(["taskset", "-p", "-c", "1", str(valkey.pid)], capture_output=True,
                   check=False)
    try:
        env = {"LEADROUTER_REDIS_URL": url, "LEADROUTER_RULES_DIR": str(ROOT / "rules"),
               "LEADROUTER_LOG_LEVEL": "warning", "LEADROUTER_RELOAD_POLL_SECONDS": "5"}
        results: dict[str, dict[str, float]] = {}
        for name, app, factory in (("no-op endpoint", "loadtests.noop_app:app", False),
                                   ("leadrouter", "router.app:app_from_env", True)):
            port = free_port()
            proc = start_server(app, port, env, factory)
            try:
                target = f"http://127.0.0.1:{port}/v1/leads"
                wrk(target, 3, args.connections)  # warm-up
                results[name] = wrk(target, args.duration, args.connections)
                if name == "leadrouter":
                    rate = results[name]["rps"] / 2
                    fixed = open_loop(target, args.latency_duration, rate,
                                      args.latency_connections)
            finally:
                stop(proc)
        trips = asyncio.run(round_trips(url, 2000))
    finally:
        valkey.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    noop, svc = results["no-op endpoint"], results["leadrouter"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; server pinned to CPU 0, wrk/openloop/Valkey on CPU 1")
    print(f"closed loop, wrk -c{args.connections}, {args.duration}s, varied leads:")
    for name, r in (("no-op endpoint", noop), ("leadrouter", svc)):
        print(f"  {name:15s} {r['rps']:8,.0f} req/s   p50 {r['p50']:6.2f} ms   "
              f"p99 {r['p99']:6.2f} ms   non-2xx {r['non2xx']:.0f}")
    print(f"  leadrouter / no-op = {svc['rps'] / noop['rps']:.0%}")
    print(f"open loop at half the maximum, {args.latency_duration}s, varied leads "
          f"(loadtests/openloop.py on CPU 1):")
    print(textwrap.indent(fixed.report(), "  "))
    print(f"Redis round trips per lead (in-process, same LeadService): {trips:.2f}")


if __name__ == "__main__":
    main()
