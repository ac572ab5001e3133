"""Rules over real HTTP: ``GET /v1/rules``, ``POST /v1/admin/rules/reload`` (auth, all-or-nothing,
gated on the rules' test cases), reload on file change, and the ``POST /v1/rules/evaluate`` dry
run that must not write anything."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import redis
from _service import AUTH, JSON, assert_problem, lead

# --- GET /v1/rules ------------------------------------------------------------------------------


def test_get_rules_shows_version_files_and_counts(api: httpx.Client) -> None:
    response = api.get("/v1/rules")
    assert response.status_code == 200
    body = response.json()
    assert len(body["version"]) == 64 and int(body["version"], 16) >= 0
    assert body["loaded_at"]
    assert {Path(f).name for f in body["files"]} == \
        {"reps.yaml", "routing.yaml", "scoring.yaml", "sla.yaml"}
    assert body["counts"]["pools"] == 4 and body["counts"]["reps"] == 9
    assert body["counts"]["sla_policies"] == 2
    assert body["last_rejected"] is None
    # GET /v1/rules is public: no token needed, and the version is what /readyz reports
    assert api.get("/readyz").json()["rules_version"] == body["version"]


def test_the_engine_deciding_is_shown_in_rules_and_status(api: httpx.Client) -> None:
    # LEADROUTER_ENGINE: which evaluator decides is part of what an operator reads first
    assert api.get("/v1/rules").json()["engine"] == "compiled"
    assert api.get("/v1/status").json()["rules"]["engine"] == "compiled"


# --- POST /v1/admin/rules/reload: auth ----------------------------------------------------------


def test_reload_requires_the_admin_token(api: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdA=="},
                    {"Authorization": "Bearer"}, {"Authorization": AUTH["Authorization"] + "x"}):
        response = api.post("/v1/admin/rules/reload", headers=headers)
        body = assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer"), headers
        assert "Bearer" in body["detail"]
    ok = api.post("/v1/admin/rules/reload", headers=AUTH)
    assert ok.status_code == 200, ok.text
    assert ok.json()["ok"] is True and ok.json()["changed"] is False


# --- reloads ------------------------------------------------------------------------------------


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


def test_admin_reload_swaps_the_ruleset(start_service: Any, rules_dir: Path) -> None:
    server = start_service(rules_dir=str(rules_dir))
    with server.client() as client:
        before = client.get("/v1/rules").json()
        assert client.post("/v1/leads", json=lead()).json()["score"]["total"] == 55
        # a new rule and a case that proves it (the reload runs the cases)
        _edit(rules_dir / "scoring.yaml", "  bant:\n",
              '    - {id: fit.named, when: \'company == "Acme Corp"\', points: 7}\n  bant:\n')
        (rules_dir / "tests" / "named.yaml").write_text(
            "cases:\n  - name: Acme Corp gets the named-account bonus\n"
            "    lead: {company: Acme Corp, employees: 5000, country: US, budget: 100000}\n"
            "    expect: {score: 62, matched: [fit.named]}\n")
        response = client.post("/v1/admin/rules/reload", headers=AUTH)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["ok"] is True and body["changed"] is True
        assert body["version"] != before["version"]
        assert body["last_reload"]["ok"] is True
        after = client.get("/v1/rules").json()
        assert after["version"] == body["version"]
        assert after["loaded_at"] >= before["loaded_at"]
        decision = client.post("/v1/leads", json=lead()).json()
        assert decision["score"]["total"] == 62
        assert decision["rules_version"] == after["version"]
        # reloading the same files again changes nothing
        again = client.post("/v1/admin/rules/reload", headers=AUTH).json()
        assert again["changed"] is False and again["version"] == after["version"]


def test_a_broken_rules_file_is_rejected_and_the_old_version_keeps_serving(
        start_service: Any, rules_dir: Path) -> None:
    server = start_service(rules_dir=str(rules_dir))
    with server.client() as client:
        version = client.get("/v1/rules").json()["version"]
        _edit(rules_dir / "scoring.yaml", 'when: "employees >= 1000"', 'when: "employees >>= 1000"')
        response = client.post("/v1/admin/rules/reload", headers=AUTH)
        body = assert_problem(response, 422)
        assert body["version"] == version
        assert len(body["errors"]) == 1
        error = body["errors"][0]
        assert "scoring.yaml:3" in error, error  # file and line
        assert "fit.big" in error  # the rule id
        # still serving the old rules
        status = client.get("/v1/rules").json()
        assert status["version"] == version
        rejected = status["last_rejected"]
        assert rejected is not None and rejected["ok"] is False
        assert rejected["reason"] == "admin" and rejected["errors"] == body["errors"]
        decision = client.post("/v1/leads", json=lead())
        assert decision.status_code == 201
        assert decision.json()["rules_version"] == version
        assert decision.json()["score"]["total"] == 55
        assert client.get("/readyz").status_code == 200


def test_a_rules_change_that_breaks_a_test_case_is_rejected(start_service: Any,
                                                            rules_dir: Path) -> None:
    server = start_service(rules_dir=str(rules_dir))
    with server.client() as client:
        version = client.get("/v1/rules").json()["version"]
        _edit(rules_dir / "scoring.yaml", "points: 25", "points: 30")  # valid, but case: 55
        body = assert_problem(client.post("/v1/admin/rules/reload", headers=AUTH), 422)
        assert any("cases.yaml:2" in e and "expected 55, got 60" in e for e in body["errors"]), \
            body["errors"]
        status = client.get("/v1/rules").json()
        assert status["version"] == version
        assert status["last_rejected"]["attempted_version"] not in (None, version)
        assert client.post("/v1/leads", json=lead()).json()["score"]["total"] == 55
        # fixing the case makes the same rules acceptable
        _edit(rules_dir / "tests" / "cases.yaml", "score: 55", "score: 60")
        ok = client.post("/v1/admin/rules/reload", headers=AUTH)
        assert ok.status_code == 200, ok.text
        assert client.post("/v1/leads", json=lead()).json()["score"]["total"] == 60
        # the rejected attempt stays visible after a later success
        assert client.get("/v1/rules").json()["last_rejected"]["ok"] is False


def _wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


def test_rule_file_changes_are_picked_up_by_polling(start_service: Any,
                                                    rules_dir: Path) -> None:
    server = start_service(rules_dir=str(rules_dir), reload_poll_seconds=0.1)
    with server.client() as client:
        version = client.get("/v1/rules").json()["version"]
        # a change whose cases pass: picked up without any request
        _edit(rules_dir / "scoring.yaml", "budget >= 50000", "budget >= 40000")
        new = _wait_for(lambda: (v := client.get("/v1/rules").json())["version"] != version
                        and v)
        assert new["last_reload"]["reason"] == "file change"
        assert new["last_rejected"] is None
        assert client.post("/v1/leads", json=lead(budget=45000)).json()["score"]["bant"] == 20
        # a broken change is refused by the poller too, and the good version keeps serving
        _edit(rules_dir / "routing.yaml", "pool: rr}", "pool: nowhere}")
        rejected = _wait_for(lambda: client.get("/v1/rules").json()["last_rejected"])
        assert rejected["reason"] == "file change"
        assert any("routing.yaml" in e and "nowhere" in e for e in rejected["errors"]), rejected
        assert client.get("/v1/rules").json()["version"] == new["version"]
        decision = client.post("/v1/leads", json=lead())
        assert decision.status_code == 201
        assert decision.json()["assignment"]["pool"] == "rr"


# --- POST /v1/rules/evaluate --------------------------------------------------------------------


def _snapshot(client: redis.Redis) -> dict[bytes, Any]:
    return {key: (client.type(key), client.dump(key)) for key in client.scan_iter()}


def test_dry_run_explains_and_writes_nothing(api: httpx.Client, redis_client: redis.Redis) -> None:
    api.post("/v1/leads", json=lead())  # some state, including the rr rotation
    api.put("/v1/accounts/acme-corp.example", json={"owner": "owner1"}, headers=AUTH)
    before = _snapshot(redis_client)
    size = redis_client.dbsize()
    assert size > 0

    headers = {"Idempotency-Key": "dry-run-1"}
    response = api.post("/v1/rules/evaluate", json=lead(external_id="ext-dry"), headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    ev = body["evaluation"]
    assert ev["status"] == "mql" and ev["score"]["total"] == 55
    assert {c["rule"] for c in ev["score"]["contributions"]} == {"fit.big", "fit.us",
                                                                 "bant.budget"}
    assert ev["route"]["kind"] == "pool" and ev["route"]["target"] == "rr"
    assert ev["sla_policy"] == "sla-mql"
    assert ev["rules_version"] == api.get("/v1/rules").json()["version"]
    assert [s["stage"] for s in body["explanation"]][:3] == ["scoring", "grade",
                                                             "qualification"]
    assert body["lead"]["employees"] == 5000
    for _ in range(5):  # repeated dry runs do not move anything either
        assert api.post("/v1/rules/evaluate", json=lead()).status_code == 200

    assert redis_client.dbsize() == size
    assert _snapshot(redis_client) == before


def test_dry_run_wrapped_with_state_and_time(api: httpx.Client,
                                             redis_client: redis.Redis) -> None:
    body = {"lead": lead(), "now": "2026-01-06T15:00:00Z",
            "state": {"account_owner": "owner1",
                      "events": [{"event": "demo_requested", "days_ago": 2}]}}
    response = api.post("/v1/rules/evaluate", json=body)
    assert response.status_code == 200, response.text
    ev = response.json()["evaluation"]
    assert ev["score"]["engagement"] == 30 and ev["score"]["total"] == 85
    assert ev["status"] == "sql"
    assert ev["route"] == {"kind": "account_owner", "target": "owner1",
                           "rule": "account-owner", "reason": ev["route"]["reason"]}
    assert ev["sla_policy"] == "sla-sql"
    assert "eng.demo" in ev["matched"]
    # the same events 40 days ago are outside the 30-day window
    body["state"]["events"][0]["days_ago"] = 40
    assert api.post("/v1/rules/evaluate", json=body).json()["evaluation"]["score"][
        "engagement"] == 0
    assert redis_client.dbsize() == 0


def test_dry_run_errors(api: httpx.Client) -> None:
    body = assert_problem(api.post("/v1/rules/evaluate", json={"lead": lead(employees="x")}),
                          422)
    assert body["errors"][0]["path"] == "$.lead.employees"
    body = assert_problem(api.post("/v1/rules/evaluate", json={"lead": lead(), "stat": {}}),
                          422)
    assert "stat" in body["detail"]
    body = assert_problem(api.post("/v1/rules/evaluate", json={
        "lead": lead(), "state": {"events": [{"event": "x", "days_ago": "yesterday"}]}}), 422)
    assert "days_ago" in body["errors"][0]["path"]
    assert_problem(api.post("/v1/rules/evaluate", json={"lead": lead(), "now": "soon"}), 422)
    assert_problem(api.post("/v1/rules/evaluate", content=b"{", headers=JSON), 400)
    body = assert_problem(api.post("/v1/rules/evaluate", json=lead(colour="red")), 422)
    assert body["errors"][0]["path"] == "$.colour"


def test_dry_run_times_out_of_range_are_422_not_500(api: httpx.Client) -> None:
    # found by schemathesis (tests/api/test_openapi_fuzz.py): these overflowed the clock (500)
    for days_ago in (1e20, -1):
        body = assert_problem(api.post("/v1/rules/evaluate", json={
            "lead": lead(), "state": {"events": [{"event": "demo_requested",
                                                  "days_ago": days_ago}]}}), 422)
        assert body["errors"][0]["path"] == "$.state.events[0].days_ago"
    for now in ("0001-01-02T00:00:00Z", "9999-12-31T23:00:00Z"):
        body = assert_problem(api.post("/v1/rules/evaluate", json={
            "lead": lead(), "now": now,
            "state": {"events": [{"event": "demo_requested", "days_ago": 10}]}}), 422)
        assert body["errors"][0]["path"] == "$.now"
        assert "2026-03-02T09:00:00Z" in body["detail"]  # how to fix it
    ok = api.post("/v1/rules/evaluate", json={
        "lead": lead(), "now": "2026-03-02T09:00:00Z",
        "state": {"events": [{"event": "demo_requested", "days_ago": 36500}]}})
    assert ok.status_code == 200, ok.text
