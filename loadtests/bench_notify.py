"""Notification benchmark: routing with the Slack and email plugins installed vs without, and the
delivery latency from commit to receipt, in one run.

    uv run python loadtests/bench_notify.py [--duration 10] [--connections 32] [--rounds 2] \
        [--latency-leads 300] [--rate 20] [--poll 0.2] [--receiver-delay 0]
    uv run python loadtests/bench_notify.py --concurrency 1,8 [--burst 400] [--rounds 2] \
        [--receiver-delay 0.1] [--poll 0.2]

Needs Debian's ``wrk``. What it does:

1. starts an embedded Valkey, a local Slack Web API (``chat.postMessage``: answers
   ``{"ok": true}``) and a local SMTP server (aiosmtpd), all in this process, pinned to CPU 1
   with wrk;
2. starts two service workers (bench_service.py's ``services``: one uvicorn worker each, on
   CPU 0): ``plain`` (the Slack and email plugins blocked) and ``notify`` (both configured:
   every assigned lead posts a Block Kit message and sends an email, through the outbox);
3. measures leads/s of each with wrk in ``--rounds`` interleaved rounds (best kept), and how
   long the ``notify`` worker then takes to deliver its backlog (the notifications of every
   lead wrk posted);
4. posts ``--latency-leads`` leads one by one at ``--rate`` leads/s to ``notify`` and reports,
   per channel, the latency from the commit (the decision's ``created_at``, the service's
   clock) to the receiver's receipt (this process' clock: the same machine): p50/p90/p99/max.

With ``--concurrency 1,8`` it measures only the drain of a burst, once per cap
(``LEADROUTER_SINK_CONCURRENCY``) in alternating rounds: a fresh ``notify`` worker with that
cap, ``--burst`` leads posted as fast as one client can, and the time from the first post to
the last notification of the burst received, per channel (Slack declares 4 concurrent
deliveries, email 1: its drain should not change). ``--receiver-delay`` makes both receivers
answer after that many seconds, standing for a real API (0.1-0.3 s); loopback receivers
answer in microseconds, which hides what overlapping deliveries buy.

The outbox's idle poll interval (``LEADROUTER_OUTBOX_POLL_SECONDS``, ``--poll``) bounds the
latency of a lead that arrives while the delivery loop sleeps: expect about half of it at p50.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import shutil
import statistics
import sys
import threading
import time
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "loadtests"))

import httpx  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402
from bench_service import (  # noqa: E402
    APP,
    BENCH,
    free_port,
    pinned_valkey,
    service_env,
    services,
    start_server,
    stop,
    write_bodies,
    wrk,
)

from router.engine.loader import load_directory  # noqa: E402

_LEAD = re.compile(r"\(lead (ld_[A-Za-z0-9_]+)\)")


class Receipts:
    """lead id → first receipt (time.time()) per channel."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: dict[str, dict[str, float]] = {"slack": {}, "email": {}}
        self.count = {"slack": 0, "email": 0}
        self.last = {"slack": 0.0, "email": 0.0}  # time.monotonic() of the latest receipt
        self.delay = 0.0  # seconds each receiver waits before answering (--receiver-delay)

    def add(self, channel: str, lead: str | None) -> None:
        now = time.time()
        with self.lock:
            self.count[channel] += 1
            self.last[channel] = time.monotonic()
            if lead:
                self.seen[channel].setdefault(lead, now)


def slack_receiver(receipts: Receipts) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like Slack
        # headers and body leave in two writes: without TCP_NODELAY, Nagle + the client's
        # delayed ACK add ~40 ms to every answer (this receiver's artefact, not the plugin's)
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            match = _LEAD.search(json.loads(body).get("text", ""))
            if receipts.delay:
                time.sleep(receipts.delay)  # a thread per connection: others go on
            receipts.add("slack", match[1] if match else None)
            data = b'{"ok": true, "channel": "C0BENCH", "ts": "1.000001"}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{port}/api"


class SmtpHandler:
    def __init__(self, receipts: Receipts) -> None:
        self.receipts = receipts

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        lead = message_from_bytes(envelope.content).get("X-Leadrouter-Lead")
        if self.receipts.delay:
            await asyncio.sleep(self.receipts.delay)
        self.receipts.add("email", lead)
        return "250 OK"


def notify_env(base: dict[str, str], slack_url: str, smtp_port: int, poll: float
               ) -> dict[str, str]:
    reps = load_directory(str(ROOT / "rules")).reps
    return {**base, "LEADROUTER_OUTBOX_POLL_SECONDS": str(poll),
            "LEADROUTER_SLACK_TOKEN": "xoxb-bench", "LEADROUTER_SLACK_CHANNEL": "C0BENCH",
            "LEADROUTER_SLACK_BASE_URL": slack_url,
            "LEADROUTER_EMAIL_SMTP_HOST": "127.0.0.1",
            "LEADROUTER_EMAIL_SMTP_PORT": str(smtp_port),
            "LEADROUTER_EMAIL_SECURITY": "none", "LEADROUTER_EMAIL_FROM": "lr@bench.example",
            "LEADROUTER_EMAIL_REPS": ",".join(f"{r}={r}@bench.example" for r in reps)}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def paced(url: str, n: int, rate: float, bodies: list[str]) -> dict[str, float]:
    """Post ``n`` leads at ``rate``/s: lead id → commit time (the decision's created_at)."""
    out: dict[str, float] = {}
    start = time.monotonic()
    with httpx.Client(timeout=10) as client:
        for i in range(n):
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
            answer = client.post(url, content=bodies[i % len(bodies)],
                                 headers={"content-type": "application/json"}).json()
            if answer.get("assignment", {}).get("owner") and answer.get("created_at"):
                created = dt.datetime.fromisoformat(answer["created_at"])
                out[answer["lead_id"]] = created.timestamp()
    return out


def settled(receipts: Receipts, timeout: float) -> float:
    """Seconds until no channel received anything for a second (the backlog delivered)."""
    start = time.monotonic()
    previous: dict[str, int] = {}
    while time.monotonic() - start < timeout:
        with receipts.lock:
            counts = dict(receipts.count)
        if counts == previous:
            return time.monotonic() - start - 1.0
        previous = counts
        time.sleep(1.0)
    return time.monotonic() - start


def burst(url: str, n: int, bodies: list[str]) -> int:
    """Post ``n`` leads back to back (one client: a bulk import); how many were assigned."""
    assigned = 0
    with httpx.Client(timeout=10) as client:
        for i in range(n):
            answer = client.post(url, content=bodies[i % len(bodies)],
                                 headers={"content-type": "application/json"}).json()
            assigned += bool(answer.get("assignment", {}).get("owner"))
    return assigned


def drained(receipts: Receipts, before: dict[str, int], expected: int, start: float,
            timeout: float) -> dict[str, float]:
    """Per channel, seconds from ``start`` to the receipt of the burst's last notification
    (``expected`` more than ``before``); a channel short of it after ``timeout``: inf."""
    while time.monotonic() - start < timeout:
        with receipts.lock:
            if all(receipts.count[c] - before[c] >= expected for c in before):
                break
        time.sleep(0.05)
    with receipts.lock:
        return {c: receipts.last[c] - start if receipts.count[c] - before[c] >= expected
                else float("inf") for c in before}


def compare_caps(args: argparse.Namespace, caps: list[int], receipts: Receipts, url: str,
                 slack_url: str, smtp_port: int, bodies: list[str]) -> None:
    """The drain of a ``--burst`` per cap, ``--rounds`` alternating rounds (best kept)."""
    best: dict[int, dict[str, float]] = {}
    timeout = 60 + 3 * args.burst * max(args.receiver_delay, 0.005)
    for rnd in range(args.rounds):
        for cap in caps if rnd % 2 == 0 else caps[::-1]:
            env = {**notify_env(service_env(url), slack_url, smtp_port, args.poll),
                   "LEADROUTER_SINK_CONCURRENCY": str(cap)}
            port = free_port()
            proc = start_server(APP, port, env, True)
            try:
                with receipts.lock:
                    before = dict(receipts.count)
                start = time.monotonic()
                expected = burst(f"http://127.0.0.1:{port}/v1/leads", args.burst, bodies)
                took = drained(receipts, before, expected, start, timeout)
            finally:
                stop(proc)
            print(f"  round {rnd + 1} cap {cap}: " + "   ".join(
                f"{c} {t:6.2f} s" for c, t in took.items()) + f"   ({expected} assigned)")
            best[cap] = {c: min(t, best.get(cap, {}).get(c, t)) for c, t in took.items()}
    print(f"burst of {args.burst} leads, receivers answering after {args.receiver_delay:g} s, "
          f"outbox poll {args.poll:g} s; drain (first post → last notification), best of "
          f"{args.rounds}:")
    for cap in caps:
        print(f"  LEADROUTER_SINK_CONCURRENCY={cap:<3d} " + "   ".join(
            f"{c} {t:7.2f} s" for c, t in best[cap].items()))
    low, high = min(caps), max(caps)
    print(f"  cap {low} / cap {high}: " + "   ".join(
        f"{c} {best[low][c] / best[high][c]:.2f}x" for c in best[low]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--latency-leads", type=int, default=300)
    ap.add_argument("--rate", type=float, default=20.0, help="leads/s of the latency phase")
    ap.add_argument("--poll", type=float, default=0.2, help="LEADROUTER_OUTBOX_POLL_SECONDS")
    ap.add_argument("--receiver-delay", type=float, default=0.0,
                    help="seconds the receivers wait before answering (a real API: 0.1-0.3)")
    ap.add_argument("--concurrency", default="",
                    help="e.g. 1,8: only compare a burst's drain with these sink caps")
    ap.add_argument("--burst", type=int, default=400, help="leads per burst (--concurrency)")
    args = ap.parse_args()
    caps = [int(c) for c in args.concurrency.split(",") if c.strip()]
    if shutil.which("taskset") is None or (not caps and shutil.which("wrk") is None):
        sys.exit("wrk and taskset needed: apt-get install wrk util-linux")
    os.sched_setaffinity(0, {1})  # the receivers share CPU 1 with wrk and Valkey
    write_bodies(5000)
    bodies = (BENCH / "bodies.txt").read_text().splitlines()
    receipts = Receipts()
    receipts.delay = args.receiver_delay
    slack, slack_url = slack_receiver(receipts)
    smtp_port = free_port()
    smtp = Controller(SmtpHandler(receipts), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    try:
        with pinned_valkey("lr-notify-bench-") as (url, _):
            if caps:
                compare_caps(args, caps, receipts, url, slack_url, smtp_port, bodies)
                return
            base = service_env(url)
            envs = {"plain": {**base, "LEADROUTER_PLUGINS_BLOCK": "slack,email"},
                    "notify": notify_env(base, slack_url, smtp_port, args.poll)}
            best: dict[str, dict[str, float]] = {}
            with services(envs, warm_seconds=2, warm_connections=args.connections) as servers:
                settled(receipts, 30.0)  # the warm-up's notifications go out first
                for rnd in range(args.rounds):
                    order = ["plain", "notify"] if rnd % 2 == 0 else ["notify", "plain"]
                    for name in order:
                        r = wrk(servers[name][1], args.duration, args.connections)
                        if name not in best or r["rps"] > best[name]["rps"]:
                            best[name] = r
                backlog_s = settled(receipts, 120.0)
                commits = paced(servers["notify"][1], args.latency_leads, args.rate, bodies)
                time.sleep(max(2.0, 5 * args.poll))
    finally:
        slack.shutdown()
        smtp.stop()
    report(args, best, backlog_s, commits, receipts)


def report(args: argparse.Namespace, best: dict[str, dict[str, float]], backlog_s: float,
           commits: dict[str, float], receipts: Receipts) -> None:
    plain, notify = best["plain"], best["notify"]
    print(f"wrk -c{args.connections}, {args.duration}s, best of {args.rounds} interleaved "
          "rounds, varied leads (server on CPU 0; wrk, Valkey and the receivers on CPU 1):")
    for name, r in (("without plugins", plain), ("slack + email", notify)):
        print(f"  {name:16s} {r['rps']:8,.0f} leads/s   p50 {r['p50']:6.2f} ms   "
              f"p99 {r['p99']:6.2f} ms   non-2xx {r['non2xx']:.0f}")
    print(f"  with / without = {notify['rps'] / plain['rps']:.0%}; the notify worker then "
          f"delivered its backlog for {backlog_s:.0f} s more")
    print(f"delivery latency, commit → receipt, {len(commits)} assigned leads of "
          f"{args.latency_leads} at {args.rate:g} leads/s, outbox poll {args.poll:g} s:")
    for channel in ("slack", "email"):
        seen = receipts.seen[channel]
        lat = [(seen[lead] - at) * 1000 for lead, at in commits.items() if lead in seen]
        if not lat:
            print(f"  {channel:6s} nothing received")
            continue
        print(f"  {channel:6s} received {len(lat)}/{len(commits)}   p50 {pct(lat, 50):7.1f} ms"
              f"   p90 {pct(lat, 90):7.1f} ms   p99 {pct(lat, 99):7.1f} ms   max "
              f"{max(lat):7.1f} ms   mean {statistics.fmean(lat):7.1f} ms")


if __name__ == "__main__":
    main()
