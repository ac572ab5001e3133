"""Redis goes away under a running service: 503 + Retry-After (problem+json) and ``/readyz``
failing while it is gone, what does not need Redis keeps working, and the service recovers by
itself when Redis is back — no restart. A valkey-server of this test's own, stopped and started
again on the same port and data dir."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from _service import AUTH, assert_problem, lead

from router.state.embedded import EmbeddedValkey

pytestmark = pytest.mark.slow


@pytest.fixture
def own_valkey(tmp_path: Path) -> Any:
    server = EmbeddedValkey(tmp_path / "valkey", port=0)  # comes back on the same port
    server.start()
    yield server
    server.stop()


def _timed(call: Any) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    response = call()
    return response, time.monotonic() - start


def test_redis_outage_is_a_503_then_recovers_by_itself(start_service: Any,
                                                       own_valkey: EmbeddedValkey,
                                                       tmp_path: Path) -> None:
    port = own_valkey.port
    server = start_service(redis_url=own_valkey.url, retry_after_seconds=3)
    with server.client() as client:
        before = client.post("/v1/leads", json=lead())
        assert before.status_code == 201
        lead_id = before.json()["lead_id"]
        assert client.get("/readyz").status_code == 200

        own_valkey.stop()

        requests = {
            "POST /v1/leads": lambda: client.post("/v1/leads", json=lead(),
                                                  headers={"Idempotency-Key": "during-outage"}),
            "POST /v1/leads (external_id)": lambda: client.post(
                "/v1/leads", json=lead(external_id="ext-outage")),
            "POST /v1/leads:batch": lambda: client.post("/v1/leads:batch",
                                                        json={"leads": [lead()]}),
            "GET /v1/leads/{id}": lambda: client.get(f"/v1/leads/{lead_id}"),
            "GET /v1/pools/rr": lambda: client.get("/v1/pools/rr"),
            "PUT /v1/reps/r1": lambda: client.put("/v1/reps/r1", json={"status": "away"},
                                                  headers=AUTH),
            "PUT /v1/accounts": lambda: client.put("/v1/accounts/acme.example",
                                                   json={"owner": "r1"}, headers=AUTH),
        }
        for name, call in requests.items():
            response, took = _timed(call)
            body = assert_problem(response, 503)
            assert response.headers.get("retry-after") == "3", (name, response.headers)
            assert body["type"].endswith("/state-unavailable"), name
            # Fails fast, no hang: a hang would run into the client's 15 s timeout. The
            # service's own bound is its Redis connect timeout (1 s) plus command timeout
            # (2 s); the headroom is for a loaded CI machine (3.0 here flaked once under load).
            assert took < 8.0, f"{name} took {took:.1f}s to fail"

        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.headers.get("retry-after") == "3"
        assert ready.json()["checks"] == {"rules": True, "redis": False}
        # what needs no Redis keeps working
        assert client.get("/livez").status_code == 200
        assert client.get("/v1/rules").status_code == 200
        dry = client.post("/v1/rules/evaluate", json=lead())
        assert dry.status_code == 200 and dry.json()["evaluation"]["status"] == "mql"
        # validation still comes first: a bad lead is a 422, not a 503
        assert_problem(client.post("/v1/leads", json=lead(employees="many")), 422)

        # Redis comes back on the same port, replaying its AOF
        back = EmbeddedValkey(tmp_path / "valkey", port=port)
        back.start()
        try:
            # the very first request after the outage already succeeds
            after = client.post("/v1/leads", json=lead(),
                                headers={"Idempotency-Key": "during-outage"})
            # the key used during the outage was not left claimed: this is a new lead
            assert after.status_code == 201, after.text
            assert client.get("/readyz").status_code == 200
            assert after.json()["lead_id"] != lead_id
            assert client.get(f"/v1/leads/{lead_id}").json()["lead_id"] == lead_id
            assert client.post("/v1/leads", json=lead(external_id="ext-outage")) \
                .status_code == 201
            stats = client.get("/v1/pools/rr").json()
            assert sum(m["assigned_in_pool"] for m in stats["members"]) == 3
        finally:
            back.stop()
