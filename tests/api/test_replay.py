"""POST /v1/rules/replay over HTTP on a real service and Valkey, and the same replay through
``leadrouter rules replay``: a threshold change moves exactly the leads it should, unchanged
rules change nothing, the CLI and the API answer the same JSON, bad rules are a 422 with their
file:line errors, and the report comes in every format."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import httpx
import pytest
from _rules import SERVICE_RULES
from _service import AUTH, assert_problem, lead, write_rules

from router.app.cli import main

BIG = 6  # big US leads with a budget: score 55 (mql today, sql with the threshold at 50)
SMALL = 4  # small leads outside the US: score 0, mql either way
SQL_AT_50 = SERVICE_RULES["scoring.yaml"].replace('"score >= 80"', '"score >= 50"')
TWO_REPS = SERVICE_RULES["routing.yaml"].replace(
    "rr: {strategy: round_robin, members: [r1, r2, r3]",
    "rr: {strategy: round_robin, members: [r1, r2]")


def _route(api: httpx.Client) -> None:
    for i in range(BIG):
        r = api.post("/v1/leads", json=lead(email=f"big{i}@co{i}.example"))
        assert r.status_code == 201, r.text
    for i in range(SMALL):
        r = api.post("/v1/leads", json=lead(email=f"small{i}@sm{i}.example", employees=10,
                                            country="DE", budget=None))
        assert r.status_code == 201, r.text


@pytest.fixture
def routed(start_service: Callable[..., Any], tmp_path: Path) -> tuple[Any, Path]:
    live = write_rules(tmp_path / "live")
    server = start_service(rules_dir=str(live))
    with server.client() as api:
        _route(api)
    return server, live


def _api(server: Any, body: dict[str, Any]) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=60) as api:
        return api.post("/v1/rules/replay", json=body, headers=AUTH)


def _files(**overrides: str) -> dict[str, str]:
    return {k: v for k, v in {**SERVICE_RULES, **overrides}.items() if "/" not in k}


def test_threshold_change_moves_exactly_the_big_leads(routed: tuple[Any, Path]) -> None:
    server, _ = routed
    r = _api(server, {"files": _files(**{"scoring.yaml": SQL_AT_50})})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    report = r.json()
    assert report["replayed"] == BIG + SMALL and report["skipped"]["count"] == 0
    assert report["changed"] == BIG
    got = {(t["field"], t["from"], t["to"]): t["count"] for t in report["transitions"]}
    assert got == {("status", "mql", "sql"): BIG, ("sla_policy", "sla-mql", "sla-sql"): BIG}
    status = {v["key"]: (v["before"], v["after"]) for v in report["by_status"]}
    assert status == {"mql": (BIG + SMALL, SMALL), "sql": (0, BIG)}
    hits = {h["rule"]: (h["before"], h["after"]) for h in report["rules"]}
    assert hits["q.sql"] == (0, BIG) and hits["q.mql"] == (BIG + SMALL, SMALL)
    assert report["rules"][0]["rule"] in {"q.sql", "q.mql", "sla-sql", "sla-mql"}
    assert {"q.bad", "to-wrr", "to-capped", "to-ll", "eng.demo"} <= set(report["dead_rules"])
    assert not {"to-rr", "q.sql", "fit.big"} & set(report["dead_rules"])
    owners = {o["owner"]: (o["before"], o["after"]) for o in report["by_owner"]}
    assert owners == {"r1": (4, 4), "r2": (3, 3), "r3": (3, 3)}  # routing unchanged
    sample = next(s for s in report["samples"] if s["field"] == "status")
    assert sample["difference"] == "q.mql -> q.sql"  # the qualification rule, both sides
    assert sample["before"]["status"] == "mql" and sample["after"]["status"] == "sql"
    assert sample["after"]["explanation"] and sample["before"]["explanation"]


def test_unchanged_rules_change_nothing(routed: tuple[Any, Path]) -> None:
    server, live = routed
    report = _api(server, {"directory": str(live)}).json()
    assert (report["replayed"], report["changed"], report["transitions"]) == (
        BIG + SMALL, 0, [])
    assert report["samples"] == []


def test_pool_members_change_moves_r3s_leads(routed: tuple[Any, Path]) -> None:
    server, _ = routed
    report = _api(server, {"files": _files(**{"routing.yaml": TWO_REPS})}).json()
    owners = {o["owner"]: (o["before"], o["after"]) for o in report["by_owner"]}
    assert owners["r3"] == (3, 0)
    assert owners["r1"][1] + owners["r2"][1] == BIG + SMALL
    moved = sum(t["count"] for t in report["transitions"]
                if t["field"] == "owner" and t["from"] == "r3")
    assert moved == 3
    assert {t["field"] for t in report["transitions"]} == {"owner"}  # nothing else moves
    r2 = next(o for o in report["by_owner"] if o["owner"] == "r2")
    (fair,) = r2["fairness"]
    assert fair["weight_before"] == 1 and fair["weight_after"] == 1


def test_cli_and_api_give_the_same_json(routed: tuple[Any, Path], tmp_path: Path,
                                        redis_url: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    server, live = routed
    # The CLI runs with the service's settings: its rules (the pools' weights before) too.
    monkeypatch.setenv("LEADROUTER_RULES_DIR", str(live))
    candidate = write_rules(tmp_path / "candidate", {"scoring.yaml": SQL_AT_50})
    api_report = _api(server, {"directory": str(candidate), "limit": 8}).json()
    out = tmp_path / "report.json"
    err = io.StringIO()
    with redirect_stderr(err):
        code = main(["rules", "replay", str(candidate), "--redis-url", redis_url,
                     "--format", "json", "--limit", "8", "--output", str(out)])
    assert code == 0, err.getvalue()
    assert json.loads(out.read_text()) == api_report
    assert api_report["replayed"] == 8 and api_report["query"]["limit"] == 8


def test_bad_candidate_rules_are_a_422_with_file_and_line(routed: tuple[Any, Path]) -> None:
    server, _ = routed
    broken = SERVICE_RULES["scoring.yaml"].replace('"employees >= 1000"', '"employees >= "')
    body = assert_problem(_api(server, {"files": _files(**{"scoring.yaml": broken})}), 422)
    assert body["errors"] and body["errors"][0]["file"].endswith("scoring.yaml")
    assert body["errors"][0]["line"] == 3 and "scoring.yaml:3:" in body["text"]
    assert "nothing was replayed" in body["detail"]


@pytest.mark.parametrize("body", [
    {}, {"files": {}, "directory": "/tmp"}, {"directory": "/nonexistent/rules"},
    {"directory": ".", "since": "yesterday"}, {"directory": ".", "format": "pdf"},
    {"directory": ".", "limit": 0}, {"files": {"../x.yaml": "a: 1"}}, {"unknown": 1},
])
def test_bad_requests_are_problems(routed: tuple[Any, Path], body: dict[str, Any]) -> None:
    server, live = routed
    if body.get("directory") == ".":
        body = {**body, "directory": str(live)}
    problem = assert_problem(_api(server, body), 422)
    assert problem["detail"]


def test_needs_the_admin_token(routed: tuple[Any, Path]) -> None:
    server, live = routed
    with server.client() as api:
        assert_problem(api.post("/v1/rules/replay", json={"directory": str(live)}), 401)


@pytest.mark.parametrize(("fmt", "media", "marker"), [
    ("text", "text/plain", "10 leads replayed, 6 changed"),
    ("markdown", "text/markdown", "| status | mql | sql | 6 |"),
    ("html", "text/html", "<svg class=\"chart-pool\""),
])
def test_formats(routed: tuple[Any, Path], fmt: str, media: str, marker: str) -> None:
    server, _ = routed
    r = _api(server, {"files": _files(**{"scoring.yaml": SQL_AT_50}), "format": fmt})
    assert r.status_code == 200 and r.headers["content-type"].startswith(media)
    assert marker in r.text


def test_empty_window(routed: tuple[Any, Path]) -> None:
    server, live = routed
    r = _api(server, {"directory": str(live), "until": "2000-01-01T00:00:00Z",
                      "format": "text"})
    assert r.status_code == 200 and r.text == "0 leads in window\n"


def test_openapi_documents_the_body_and_the_problems(api: Any) -> None:
    op = api.get("/schema/openapi.json").json()["paths"]["/v1/rules/replay"]["post"]
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert {"files", "directory", "since", "until", "limit", "format"} <= set(body["properties"])
    assert {"200", "401", "403", "422", "503"} <= set(op["responses"])
    assert "problem+json" in str(op["responses"]["422"]["content"])


def test_each_lead_against_its_own_versions_rules_reproduces_it(
        routed: tuple[Any, Path], tmp_path: Path, redis_url: str) -> None:
    server, live = routed
    with server.client() as api:
        version = api.get("/v1/rules").json()["version"]
    candidate = write_rules(tmp_path / "candidate", {"scoring.yaml": SQL_AT_50})
    report = _api(server, {"directory": str(candidate),
                           "rules_versions": {version[:12]: str(live)}}).json()
    assert (report["replayed"], report["changed"]) == (BIG + SMALL, 0)
    assert report["rules_versions"] == {version: BIG + SMALL}
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["rules", "replay", str(candidate), "--redis-url", redis_url, "--format",
                     "json", "--rules-version", f"{version[:12]}={live}"])
    assert code == 0, err.getvalue()
    assert json.loads(out.getvalue())["changed"] == 0
