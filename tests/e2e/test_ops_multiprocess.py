"""`leadrouter serve --workers 2`: metrics are summed over the workers (prometheus-client
multiprocess mode), whichever worker answers the scrape, and stale files are cleaned at start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from _ops import LEAD, free_port, metric_value, promtool, write_example_rules

N_LEADS = 20


def _serve(tmp_path: Path, redis_url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    rules = write_example_rules(tmp_path / "rules")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LEADROUTER_", "PROMETHEUS_MULTIPROC"))}
    env.update(LEADROUTER_LOG_LEVEL="warning", LEADROUTER_METRICS_FLUSH_SECONDS="0.2")
    leadrouter = Path(sys.executable).with_name("leadrouter")
    proc = subprocess.Popen(
        [str(leadrouter), "serve", "--workers", str(workers), "--port", str(port), "--rules",
         str(rules), "--redis-url", redis_url, "--data-dir", str(tmp_path / "data")],
        env=env, stdout=(tmp_path / "serve.log").open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise TimeoutError((tmp_path / "serve.log").read_text())


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_two_workers_report_one_sum(tmp_path: Path, redis_url: str) -> None:
    metrics_dir = tmp_path / "data" / "metrics"
    metrics_dir.mkdir(parents=True)
    stale = metrics_dir / "counter_999999.db"
    stale.write_bytes(b"left over from a previous run")
    proc, url = _serve(tmp_path, redis_url, workers=2)
    try:
        assert not stale.exists(), "stale multiprocess files must be removed at start"
        for i in range(N_LEADS):
            # A new connection each time, so the kernel spreads them over both workers.
            with httpx.Client(base_url=url, timeout=10) as client:
                posted = client.post("/v1/leads", json={**LEAD, "external_id": f"mp-{i}"})
                assert posted.status_code == 201, posted.text
        time.sleep(0.6)  # > the flush interval (0.2 s here)
        pids = {p.name.split("_")[1] for p in metrics_dir.glob("counter_*.db")}
        assert len(pids) == 2, f"both workers write their own files: {pids}"
        for _ in range(4):
            with httpx.Client(base_url=url, timeout=10) as client:
                text = client.get("/metrics").text
            assert metric_value(text, "leadrouter_lead_outcomes_total",
                                outcome="created") == N_LEADS
            assert metric_value(text, "leadrouter_http_requests_total", route="/v1/leads",
                                status="201") == N_LEADS
            assert metric_value(text, "leadrouter_workers") == 2
        promtool("check", "metrics", stdin=text)
        status = httpx.get(f"{url}/v1/status", timeout=10).json()
        assert status["leads"]["routed"] == N_LEADS and status["workers"] == 2
    finally:
        _stop(proc)
