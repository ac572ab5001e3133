"""Run the locust mix headless against a fresh ``leadrouter serve`` and summarise it.

    uv run --group load python loadtests/run_locust.py --workers 1 --users 32 --duration 60
    uv run --group load python loadtests/run_locust.py --workers 2 --users 32 --duration 60
    uv run --group load python loadtests/run_locust.py --workers 2 --users 16 --rate 200 \\
        --duration 600 --warmup 360 --sample 10 --retention 60s --short-sla 1m \\
        --engagement-retention 2m --facts-maxlen 100000 --breakdown --name soak

Each run starts ``leadrouter serve --workers N`` (embedded Valkey, fresh data dir, the shipped
``rules/``, access log off unless ``--access-log``) on a free loopback port, runs
``locust --headless`` for the given users and time (``--rate R``: R requests/s in total, spread
over the users as constant throughput — for the soak — instead of as fast as possible), stops
everything, and writes into ``--out`` (default ``loadtests/results/``):

* ``NAME.csv``: per endpoint: requests, failures, rps, p50, p95, p99 (ms);
* ``NAME.md``: the same as a Markdown table, plus the machine and the command;
* with ``--sample S``: ``NAME-samples.csv`` — every S seconds the service's RSS (supervisor and
  workers, MiB) and Redis ``used_memory`` (MiB) — and the curves in ``NAME.md``;
* with ``--breakdown``: Redis memory by key family at the end of the load
  (``redis_breakdown.py``), in ``NAME.md``.

``NAME.md`` lists every ``LEADROUTER_*`` setting the service ran with. The soak's settings
(``--retention``, ``--short-sla``, ``--engagement-retention``, ``--outbox-maxlen``,
``--facts-maxlen``) shorten what Redis keeps so that it reaches its steady state (expiring and
trimming as fast as it stores) within the warm-up; with the defaults it would grow for days.

Loopback only; the run is bounded by ``--duration``. Exit status 1 if any request failed.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"leadrouter serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError("leadrouter serve did not become ready")


def group_pids(leader: int) -> list[int]:
    """The supervisor and every process in its process group (the uvicorn workers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[2]) == leader and "valkey" not in (entry / "comm").read_text():
            pids.append(int(entry.name))
    return pids


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def redis_used_mib(redis_url: str) -> float:
    import redis

    with redis.Redis.from_url(redis_url, socket_timeout=2) as client:
        return float(client.info("memory")["used_memory"]) / 2**20  # type: ignore[index]


def percentile_columns(row: dict[str, str]) -> tuple[float, float, float]:
    return float(row["50%"]), float(row["95%"]), float(row["99%"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--users", type=int, default=32)
    ap.add_argument("--spawn-rate", type=float, default=32)
    ap.add_argument("--duration", type=int, default=60, help="seconds of load")
    ap.add_argument("--rate", type=float, default=0,
                    help="total requests/s (constant throughput); 0 = as fast as possible")
    ap.add_argument("--sample", type=float, default=0,
                    help="seconds between RSS / Redis memory samples (0 = none)")
    ap.add_argument("--rules", default=str(ROOT / "rules"))
    ap.add_argument("--name", default=None, help="result file name (default: workers-N)")
    ap.add_argument("--out", default=str(ROOT / "loadtests" / "results"))
    ap.add_argument("--access-log", action="store_true", help="keep the JSON access log on")
    ap.add_argument("--warmup", type=float, default=0,
                    help="seconds of load before the first memory sample (to reach the steady "
                         "state); the load runs for warmup + duration")
    ap.add_argument("--short-sla", default=None, metavar="DURATION",
                    help="serve a copy of the rules with every accept_within set to DURATION "
                         "(e.g. 1m) on the wall clock: leads outlive their SLA deadline by the "
                         "retention, so a soak with the shipped hours-long SLAs (business-hours "
                         "ones due the next morning) never reaches its steady state")
    ap.add_argument("--retention", default=None,
                    help="decision and idempotency retention (e.g. 60s) — short for a soak, so "
                         "Redis reaches its steady state (expiring as fast as it stores)")
    ap.add_argument("--engagement-retention", default=None, metavar="DURATION",
                    help="LEADROUTER_ENGAGEMENT_RETENTION (e.g. 2m): every lead of the mix is a "
                         "new person, whose engagement is otherwise kept 400 days")
    ap.add_argument("--outbox-maxlen", type=int, default=None, metavar="N",
                    help="LEADROUTER_OUTBOX_MAXLEN (default 100000 events, ~2.3 KB each)")
    ap.add_argument("--facts-maxlen", type=int, default=None, metavar="N",
                    help="LEADROUTER_SLA_FACTS_MAXLEN (default 200000: fills in ~4.5 "
                         "minutes at the soak's 200 req/s)")
    ap.add_argument("--breakdown", action="store_true",
                    help="at the end of the load, Redis memory by key family (MEMORY USAGE "
                         "of every key) into NAME.md")
    args = ap.parse_args()

    name = args.name or f"workers-{args.workers}"
    rules_dir = args.rules
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="lr-locust-"))
    if args.short_sla:
        import re

        rules_dir = str(work / "rules")
        shutil.copytree(args.rules, rules_dir)
        sla = Path(rules_dir) / "sla.yaml"
        text = re.sub(r"accept_within: *\S+", f"accept_within: {args.short_sla}",
                      sla.read_text())
        sla.write_text(re.sub(r"clock: *business", "clock: wall", text))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    leadrouter = Path(sys.executable).with_name("leadrouter")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADROUTER_", "PROMETHEUS"))}
    env.update(LEADROUTER_LOG_LEVEL="warning", LEADROUTER_ACCESS_LOG=str(args.access_log).lower(),
               LEADROUTER_RELOAD_POLL_SECONDS="0")
    if args.retention:
        env.update(LEADROUTER_DECISION_RETENTION=args.retention,
                   LEADROUTER_IDEMPOTENCY_RETENTION=args.retention)
    if args.engagement_retention:
        env["LEADROUTER_ENGAGEMENT_RETENTION"] = args.engagement_retention
    if args.outbox_maxlen:
        env["LEADROUTER_OUTBOX_MAXLEN"] = str(args.outbox_maxlen)
    if args.facts_maxlen:
        env["LEADROUTER_SLA_FACTS_MAXLEN"] = str(args.facts_maxlen)
    settings = sorted(f"{k}={v}" for k, v in env.items() if k.startswith("LEADROUTER_"))
    print(f"{name}: leadrouter serve --workers {args.workers} with " + " ".join(settings),
          flush=True)
    server_log = (work / "server.log").open("wb")
    server = subprocess.Popen(
        [str(leadrouter), "serve", "--workers", str(args.workers), "--port", str(port),
         "--rules", rules_dir, "--data-dir", str(work / "data")],
        env=env, stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True)
    samples: list[tuple[float, float, float]] = []
    stop = threading.Event()
    report = ""
    try:
        wait_ready(url, server)
        with urllib.request.urlopen(f"{url}/v1/status", timeout=5) as r:
            import json

            status = json.load(r)
        redis_url = _redis_url(work / "server.log")
        locust_env = {**env}
        if args.rate > 0:
            locust_env["LOCUST_RATE"] = str(args.rate / args.users)

        def sampler() -> None:
            if stop.wait(args.warmup):
                return
            samples.append((0.0, rss_mib(group_pids(server.pid)),
                            redis_used_mib(redis_url) if redis_url else float("nan")))
            start = time.monotonic()
            while not stop.wait(args.sample if not samples else
                                max(0.0, start + len(samples) * args.sample - time.monotonic())):
                samples.append((time.monotonic() - start, rss_mib(group_pids(server.pid)),
                                redis_used_mib(redis_url) if redis_url else float("nan")))

        thread = threading.Thread(target=sampler, daemon=True)
        if args.sample > 0:
            thread.start()
        prefix = work / "locust"
        cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py"),
               "--headless", "--host", url, "--users", str(args.users),
               "--spawn-rate", str(args.spawn_rate),
               "--run-time", f"{int(args.duration + args.warmup)}s",
               "--csv", str(prefix), "--only-summary", "--stop-timeout", "5",
               "--loglevel", "WARNING"]
        started = time.time()
        subprocess.run(cmd, env=locust_env, check=False, timeout=args.duration + args.warmup + 120)
        elapsed = time.time() - started
        stop.set()
        if args.breakdown and redis_url:
            sys.path.insert(0, str(ROOT / "loadtests"))
            from redis_breakdown import breakdown

            report = breakdown(redis_url)
    finally:
        stop.set()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        server_log.close()

    rows = list(csv.DictReader((work / "locust_stats.csv").open()))
    table = []
    for row in rows:
        p50, p95, p99 = percentile_columns(row)
        table.append({"endpoint": row["Name"], "requests": int(row["Request Count"]),
                      "failures": int(row["Failure Count"]),
                      "rps": round(float(row["Requests/s"]), 1),
                      "p50_ms": p50, "p95_ms": p95, "p99_ms": p99})
    with (out / f"{name}.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    failures = next((t["failures"] for t in table if t["endpoint"] == "Aggregated"), 0)
    if failures:
        shutil.copy(work / "locust_failures.csv", out / f"{name}-failures.csv")
    md = [f"### {name}: {args.workers} worker(s), {args.users} users, {args.duration} s"
          + (f", offered {args.rate:g} req/s" if args.rate else ", closed loop")
          + (f", retention {args.retention}" if args.retention else "")
          + (f", every SLA {args.short_sla} (wall clock)" if args.short_sla else "")
          + (f", after {args.warmup:g} s of warm-up" if args.warmup else ""), "",
          f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC · {platform.machine()}, "
          f"{os.cpu_count()} vCPUs shared by the service, Valkey and locust · Python "
          f"{platform.python_version()} · leadrouter {status.get('version')} · rules "
          f"{status['rules']['version'][:12]} · wall {elapsed:.0f} s", "",
          "Command: `python loadtests/run_locust.py " + " ".join(sys.argv[1:]) + "`", "",
          "Service settings: " + ", ".join(f"`{x}`" for x in settings)
          + (f"; rules: a copy of `{args.rules}` with every `accept_within: {args.short_sla}`"
             " and `clock: wall`"
             if args.short_sla else f"; rules: `{args.rules}`") + ".", "",
          "| endpoint | requests | failures | req/s | p50 ms | p95 ms | p99 ms |",
          "|---|---:|---:|---:|---:|---:|---:|"]
    md += [f"| {t['endpoint']} | {t['requests']:,} | {t['failures']} | {t['rps']:,} | "
           f"{t['p50_ms']:g} | {t['p95_ms']:g} | {t['p99_ms']:g} |" for t in table]
    optional = [e for e in ("POST /v1/events", "POST /v1/leads/{lead_id}/accept")
                if not any(t["endpoint"] == e for t in table)]
    if optional:
        md += ["", "Not in the mix (the service has no such endpoint yet): "
               + ", ".join(f"`{e}`" for e in optional) + "."]
    if samples:
        with (out / f"{name}-samples.csv").open("w", newline="") as f:
            writer2 = csv.writer(f)
            writer2.writerow(["seconds", "service_rss_mib", "redis_used_memory_mib"])
            writer2.writerows([(round(s, 1), round(r, 2), round(m, 2)) for s, r, m in samples])
        md += ["", _curves(samples)]
    if report:
        md += ["", report]
    (out / f"{name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


def _redis_url(log: Path) -> str | None:
    for line in log.read_text(errors="replace").splitlines():
        if "embedded Valkey at " in line:
            return line.split("embedded Valkey at ", 1)[1].split()[0]
    return None


def _curves(samples: list[tuple[float, float, float]]) -> str:
    """The two memory curves as a table (every sample) with the first/last/min/max summary."""
    rss = [s[1] for s in samples]
    mem = [s[2] for s in samples]
    bars = " ▁▂▃▄▅▆▇█"

    def slope(values: list[float]) -> float:
        """MiB per minute over the second half of the samples (least squares)."""
        half = samples[len(samples) // 2:]
        ys = values[len(samples) // 2:]
        if len(half) < 2:
            return 0.0
        ts = [s[0] / 60 for s in half]
        mt, my = sum(ts) / len(ts), sum(ys) / len(ys)
        var = sum((t - mt) ** 2 for t in ts)
        return sum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True)) / var if var else 0.0

    def spark(values: list[float]) -> str:
        lo, hi = min(values), max(values)
        span = (hi - lo) or 1.0
        return "".join(bars[int((v - lo) / span * (len(bars) - 1))] for v in values)

    lines = [
        f"Memory, sampled every {samples[1][0] - samples[0][0]:.0f} s "
        f"({len(samples)} samples):" if len(samples) > 1 else "Memory:", "",
        "| series | first | min | max | last | last - first | MiB/min, 2nd half | curve |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        f"| service RSS (MiB) | {rss[0]:.1f} | {min(rss):.1f} | {max(rss):.1f} | {rss[-1]:.1f} | "
        f"{rss[-1] - rss[0]:+.1f} | {slope(rss):+.2f} | `{spark(rss)}` |",
        f"| Redis used_memory (MiB) | {mem[0]:.2f} | {min(mem):.2f} | {max(mem):.2f} | "
        f"{mem[-1]:.2f} | {mem[-1] - mem[0]:+.2f} | {slope(mem):+.2f} | `{spark(mem)}` |", "",
        "<details><summary>every sample</summary>", "",
        "| t (s) | service RSS (MiB) | Redis used_memory (MiB) |", "|---:|---:|---:|"]
    lines += [f"| {t:.0f} | {r:.1f} | {m:.2f} |" for t, r, m in samples]
    lines += ["", "</details>"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
