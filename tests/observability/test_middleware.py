"""router/observability/middleware.py over real HTTP: RED metrics by route template (never a
raw path or personal data in a label), request ids honoured or generated, one JSON access line
per request."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable

import httpx
import pytest
from _ops import LEAD, InThreadService, metric_value, promtool

from router.observability import logs


def test_a_routed_lead_shows_up_in_metrics_by_route_template(service: InThreadService) -> None:
    with httpx.Client(base_url=service.url, timeout=10) as client:
        before = client.get("/metrics").text
        posted = client.post("/v1/leads", json=LEAD)
        assert posted.status_code == 201, posted.text
        lead_id = posted.json()["lead_id"]
        assert client.get(f"/v1/leads/{lead_id}").status_code == 200
        assert client.get("/v1/leads/ld_nope").status_code == 404
        assert client.get("/no/such/path").status_code == 404
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    promtool("check", "metrics", stdin=text)

    def delta(name: str, **labels: str) -> float:
        return metric_value(text, name, **labels) - metric_value(before, name, **labels)

    assert delta("leadrouter_lead_outcomes_total", outcome="created") == 1
    assert delta("leadrouter_leads_received_total", source="api") == 1
    assert delta("leadrouter_decisions_total", status="sql") == 1
    assert delta("leadrouter_http_requests_total", method="POST", route="/v1/leads",
                 status="201") == 1
    assert delta("leadrouter_http_requests_total", method="GET",
                 route="/v1/leads/{lead_id}", status="200") == 1
    assert delta("leadrouter_http_requests_total", method="GET",
                 route="/v1/leads/{lead_id}", status="404") == 1
    assert delta("leadrouter_http_requests_total", route="unmatched", status="404") == 1
    assert delta("leadrouter_http_request_duration_seconds_count", route="/v1/leads") == 1
    assert delta("leadrouter_lead_score_count") == 1
    for stage in ("prefetch", "evaluate", "commit"):
        assert delta("leadrouter_decision_stage_duration_seconds_count", stage=stage) == 1
    assert delta("leadrouter_redis_operation_duration_seconds_count", operation="commit") == 1
    assert delta("leadrouter_redis_round_trips_total") >= 2
    assert metric_value(text, "leadrouter_redis_up") == 1
    assert metric_value(text, "leadrouter_sla_pending_leads") >= 1
    assert metric_value(text, "leadrouter_workers") == 3
    # Never a raw path, a lead id or personal data in a label.
    from prometheus_client.parser import text_string_to_metric_families

    values = {v for family in text_string_to_metric_families(text)
              for sample in family.samples for v in sample.labels.values()}
    for value in values:
        for bad in (lead_id, "ld_nope", "/no/such", "bigco", "@", "555", "Jane"):
            assert bad not in value, (bad, value)


def test_request_ids_are_honoured_or_generated(service: InThreadService) -> None:
    with httpx.Client(base_url=service.url, timeout=10) as client:
        given = client.get("/livez", headers={"X-Request-ID": "req-abc-123"})
        assert given.headers["x-request-id"] == "req-abc-123"
        generated = client.get("/livez")
        assert len(generated.headers["x-request-id"]) == 16
        assert generated.headers["x-request-id"] != given.headers["x-request-id"]
        personal = client.get("/livez", headers={"X-Request-ID": "jane@bigco.example"})
        assert "@" not in personal.headers["x-request-id"]
        problem = client.post("/v1/leads", content=b"{", headers={"X-Request-ID": "bad-1"})
        assert problem.status_code == 400
        assert problem.headers["x-request-id"] == "bad-1"


@pytest.mark.parametrize("direct", [True, False], ids=["direct-write", "logging-module"])
def test_one_json_access_line_per_request_without_personal_data(
        service: InThreadService, monkeypatch: pytest.MonkeyPatch, direct: bool,
        json_log: Callable[[str], io.StringIO]) -> None:
    stream = json_log("leadrouter.access")
    monkeypatch.setattr(logs, "_access_stream", stream if direct else None)
    with httpx.Client(base_url=service.url, timeout=10) as client:
        posted = client.post("/v1/leads", json=LEAD, headers={"X-Request-ID": "trace-42"})
    assert posted.status_code == 201
    # The line is written once the response has gone out (its duration covers sending), so
    # the client can read the response a moment before the server thread writes the line.
    deadline = time.monotonic() + 5
    while not stream.getvalue().endswith("\n") and time.monotonic() < deadline:
        time.sleep(0.01)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 1, lines
    line = lines[0]
    assert line["logger"] == "leadrouter.access" and line["level"] == "info"
    assert line["request_id"] == "trace-42"
    assert line["lead_id"] == posted.json()["lead_id"]
    assert line["rules_version"] == posted.json()["rules_version"]
    assert line["route"] == "/v1/leads" and line["status"] == 201
    assert line["duration_ms"] > 0
    raw = stream.getvalue()
    assert "jane" not in raw.lower() and "bigco" not in raw and "555" not in raw
