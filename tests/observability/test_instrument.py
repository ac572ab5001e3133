"""router/observability/instrument.py over real HTTP: the values read at scrape time (Redis
reachable, SLA backlog, queues) in /v1/status and /metrics, and the timed store's error counts
while Redis is down."""

from __future__ import annotations

from pathlib import Path

import httpx
from _ops import LEAD, InThreadService, free_port, metric_value, write_example_rules


def test_status_summarises_the_instance(service: InThreadService) -> None:
    with httpx.Client(base_url=service.url, timeout=10) as client:
        assert client.post("/v1/leads", json=LEAD).status_code == 201
        body = client.get("/v1/status").json()
        rules = client.get("/v1/rules").json()
    assert body["version"] and body["workers"] == 3 and body["uptime_seconds"] >= 0
    assert body["rules"]["version"] == rules["version"]
    assert body["rules"]["loaded_at"] and body["rules"]["last_rejected"] is None
    assert body["redis"] == {"reachable": True, "embedded": False, "key_prefix": "lr:"}
    assert body["leads"]["routed"] >= 1
    assert body["backlog"]["sla_pending"] >= 1
    assert set(body["backlog"]["queues"]) >= {"unassigned", "review", "nurture"}


def test_metrics_and_status_answer_while_redis_is_down(tmp_path: Path) -> None:
    rules = write_example_rules(tmp_path / "rules")
    down = f"redis://127.0.0.1:{free_port()}/0"
    with InThreadService(redis_url=down, rules_dir=str(rules), reload_poll_seconds=0) as svc, \
            httpx.Client(base_url=svc.url, timeout=10) as client:
        assert client.get("/readyz").status_code == 503
        text = client.get("/metrics").text
        assert metric_value(text, "leadrouter_redis_up") == 0
        assert metric_value(text, "leadrouter_redis_errors_total", operation="backlog",
                            kind="unavailable") >= 1
        status = client.get("/v1/status").json()
        assert status["redis"]["reachable"] is False and "backlog" not in status
