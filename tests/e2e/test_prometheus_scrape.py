"""A real Prometheus server (Debian's package) scrapes a running leadrouter on loopback, and a
posted lead shows up in a query through Prometheus' HTTP API."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
from _ops import LEAD, InThreadService, free_port, metric_value, tool, write_example_rules

TIMEOUT = 40.0  # the whole test stops by itself within this


def test_prometheus_scrapes_a_posted_lead(tmp_path: Path, redis_url: str) -> None:
    prometheus = tool("prometheus")
    rules = write_example_rules(tmp_path / "rules")
    with InThreadService(redis_url=redis_url, rules_dir=str(rules), reload_poll_seconds=0,
                         metrics_flush_seconds=0.2) as svc:
        posted = httpx.post(f"{svc.url}/v1/leads", json=LEAD, timeout=10)
        assert posted.status_code == 201, posted.text
        expected = metric_value(httpx.get(f"{svc.url}/metrics", timeout=10).text,
                                "leadrouter_decisions_total", status="sql")
        assert expected >= 1
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: leadrouter\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{svc.port}']}}]\n")
        log = (tmp_path / "prometheus.log").open("wb")
        server = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h",
             "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        api = f"http://127.0.0.1:{port}/api/v1/query"
        query = 'sum(leadrouter_decisions_total{job="leadrouter",status="sql"})'
        deadline = time.monotonic() + TIMEOUT
        got: list[object] = []
        try:
            while time.monotonic() < deadline:
                assert server.poll() is None, (tmp_path / "prometheus.log").read_text()
                try:
                    answer = httpx.get(api, params={"query": query}, timeout=5).json()
                    got = answer["data"]["result"]
                    if got and float(got[0]["value"][1]) == expected:  # type: ignore[index]
                        break
                except (httpx.TransportError, KeyError, ValueError):
                    pass
                time.sleep(0.5)
            else:
                raise AssertionError(f"Prometheus never saw {query} == {expected}: {got}\n"
                                     + (tmp_path / "prometheus.log").read_text()[-2000:])
            up = httpx.get(api, params={"query": 'up{job="leadrouter"}'}, timeout=5).json()
            assert up["data"]["result"][0]["value"][1] == "1"
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=5)
            log.close()
