"""Shadow mode over HTTP on a real service and Valkey (LEADROUTER_SHADOW_RULES): every live lead
is decided again by the shadow rules off the request's path and counted (evaluations,
divergences); ``GET /v1/rules/shadow`` and ``leadrouter rules shadow-report`` give the replay
report of the shadow period against the recorded shadow rules; a shadow ruleset that does not
load never touches live routing (one that raises while deciding:
tests/services/test_shadow.py)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import httpx
import pytest
from _ops import metric_value
from _rules import SERVICE_RULES
from _service import AUTH, assert_problem, lead, write_rules

from router.app.cli import main

BIG = 6  # score 55: mql live, sql in the shadow (threshold 50)
SMALL = 4  # outside the US: mql both; rr live, wrr in the shadow
SQL_AT_50 = SERVICE_RULES["scoring.yaml"].replace('"score >= 80"', '"score >= 50"')
OTHER_TO_WRR = SERVICE_RULES["routing.yaml"].replace(
    '  - {id: to-rr, when: "true", pool: rr}',
    '  - {id: to-wrr-other, when: \'country != "US"\', pool: wrr}\n'
    '  - {id: to-rr, when: "true", pool: rr}')


def _route(api: httpx.Client) -> list[dict[str, Any]]:
    out = []
    for i in range(BIG):
        r = api.post("/v1/leads", json=lead(email=f"big{i}@co{i}.example"))
        assert r.status_code == 201, r.text
        out.append(r.json())
    for i in range(SMALL):
        r = api.post("/v1/leads", json=lead(email=f"small{i}@sm{i}.example", employees=10,
                                            country="DE", budget=None))
        assert r.status_code == 201, r.text
        out.append(r.json())
    return out


def _metrics(api: httpx.Client) -> str:
    r = api.get("/metrics")
    assert r.status_code == 200
    return r.text


def _shadow_counts(api: httpx.Client) -> dict[str, float]:
    text = _metrics(api)
    return {"evaluations": metric_value(text, "leadrouter_shadow_evaluations_total"),
            "status": metric_value(text, "leadrouter_shadow_divergences_total",
                                   field="status"),
            "pool": metric_value(text, "leadrouter_shadow_divergences_total", field="pool"),
            "load": metric_value(text, "leadrouter_shadow_errors_total", stage="load"),
            "evaluate": metric_value(text, "leadrouter_shadow_errors_total",
                                     stage="evaluate")}


def _wait_for(api: httpx.Client, before: dict[str, float], key: str,
              n: float) -> dict[str, float]:
    """The counters once ``key`` moved by ``n`` (the shadow task runs after the response)."""
    deadline = time.monotonic() + 15
    while True:
        now = _shadow_counts(api)
        if now[key] - before[key] >= n or time.monotonic() > deadline:
            return {k: now[k] - before[k] for k in now}
        time.sleep(0.05)


def _shadow_dir(tmp_path: Path) -> Path:
    return write_rules(tmp_path / "shadow", {"scoring.yaml": SQL_AT_50,
                                             "routing.yaml": OTHER_TO_WRR})


@pytest.fixture
def shadowed(start_service: Callable[..., Any], tmp_path: Path) -> tuple[Any, Path]:
    server = start_service(rules_dir=str(write_rules(tmp_path / "live")),
                           shadow_rules=str(_shadow_dir(tmp_path)))
    return server, tmp_path / "shadow"


def test_every_live_lead_is_evaluated_and_divergences_counted(
        shadowed: tuple[Any, Path]) -> None:
    server, _ = shadowed
    with server.client() as api:
        before = _shadow_counts(api)
        decisions = _route(api)
        moved = _wait_for(api, before, "evaluations", BIG + SMALL)
    # live routing is the live rules': the shadow acts on nothing
    assert [d["status"] for d in decisions] == ["mql"] * (BIG + SMALL)
    assert {d["assignment"]["pool"] for d in decisions} == {"rr"}
    assert moved == {"evaluations": BIG + SMALL, "status": BIG, "pool": SMALL, "load": 0,
                     "evaluate": 0}


def test_shadow_report_is_the_replay_of_the_shadow_period(
        shadowed: tuple[Any, Path], tmp_path: Path, redis_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server, _ = shadowed
    with server.client() as api:
        before = _shadow_counts(api)
        _route(api)
        _wait_for(api, before, "evaluations", BIG + SMALL)
        r = api.get("/v1/rules/shadow", headers=AUTH)
        assert r.status_code == 200, r.text
        report = r.json()
        files = {k: v for k, v in {**SERVICE_RULES, "scoring.yaml": SQL_AT_50,
                                   "routing.yaml": OTHER_TO_WRR}.items() if "/" not in k}
        replay = api.post("/v1/rules/replay", json={"files": files}, headers=AUTH).json()
        assert api.get("/v1/rules/shadow", headers=AUTH).json() == report  # stable
        assert_problem(api.get("/v1/rules/shadow"), 401)
    assert report["replayed"] == BIG + SMALL and report["changed"] == BIG + SMALL
    got = {(t["field"], t["from"], t["to"]): t["count"] for t in report["transitions"]}
    assert got[("status", "mql", "sql")] == BIG
    assert got[("pool", "rr", "wrr")] == SMALL
    assert report["query"]["since"] is not None  # the shadow period, not every lead kept
    # the same report as a replay of these leads against the shadow rules
    assert {k: v for k, v in report.items() if k != "query"} == \
        {k: v for k, v in replay.items() if k != "query"}
    # the CLI answers the same document (the service's rules: LEADROUTER_RULES_DIR)
    monkeypatch.setenv("LEADROUTER_RULES_DIR", str(tmp_path / "live"))
    out = tmp_path / "shadow.json"
    err = io.StringIO()
    with redirect_stderr(err):
        code = main(["rules", "shadow-report", "--redis-url", redis_url, "--format", "json",
                     "--output", str(out)])
    assert code == 0, err.getvalue()
    cli = json.loads(out.read_text())
    # this process no longer shadows it: the CLI's period ends at the last lead evaluated
    assert cli["replayed"] == BIG + SMALL
    assert {k: v for k, v in cli.items() if k != "query"} == \
        {k: v for k, v in report.items() if k != "query"}


def test_broken_shadow_rules_never_touch_live_routing(start_service: Callable[..., Any],
                                                      tmp_path: Path) -> None:
    broken = write_rules(tmp_path / "broken", {
        "scoring.yaml": SQL_AT_50.replace('"employees >= 1000"', '"employes >= 1000"')})
    live = write_rules(tmp_path / "live")
    server = start_service(rules_dir=str(live), shadow_rules=str(broken))
    with server.client() as api:
        before = _shadow_counts(api)
        decisions = _route(api)
        after = _shadow_counts(api)
        assert_problem(api.get("/v1/rules/shadow", headers=AUTH), 404)
    assert [d["status"] for d in decisions] == ["mql"] * (BIG + SMALL)
    assert [d["score"]["total"] for d in decisions] == [55] * BIG + [0] * SMALL
    assert after["evaluations"] == before["evaluations"]
    # counted once at start-up (before `before` was read): the process-wide counter has it
    assert after["load"] >= 1
