"""The reload gate on a real service and Valkey: ``POST /v1/admin/rules/reload?max_change=``,
LEADROUTER_RELOAD_MAX_CHANGE and ``leadrouter rules check --max-change`` replay the last 7
days' leads against the candidate and refuse a change that moves more than the limit; the live
ruleset is untouched on refusal; bad syntax is a clear error."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import httpx
import pytest
from _rules import SERVICE_RULES
from _service import AUTH, assert_problem, lead, write_rules

from router.app.application import create_app
from router.app.cli import main
from router.settings import Settings, SettingsError

BIG = 2  # score 55: mql now, sql with the threshold at 50 — 2 of 10 leads = 20% change
SMALL = 8
SQL_AT_50 = SERVICE_RULES["scoring.yaml"].replace('"score >= 80"', '"score >= 50"')


def _route(api: httpx.Client, tag: str = "") -> None:
    for i in range(BIG):
        r = api.post("/v1/leads", json=lead(email=f"big{tag}{i}@co{i}.example"))
        assert r.status_code == 201 and r.json()["status"] == "mql", r.text
    for i in range(SMALL):
        r = api.post("/v1/leads", json=lead(email=f"small{tag}{i}@sm{i}.example",
                                            employees=10, country="DE", budget=None))
        assert r.status_code == 201, r.text


@pytest.fixture
def routed(start_service: Callable[..., Any], tmp_path: Path) -> tuple[Any, Path]:
    live = write_rules(tmp_path / "live")
    server = start_service(rules_dir=str(live), require_rules_tests=False)
    with server.client() as api:
        _route(api)
    (live / "scoring.yaml").write_text(SQL_AT_50)  # the change, saved but not yet loaded
    return server, live


def _reload(api: httpx.Client, max_change: str | None) -> httpx.Response:
    params = {"max_change": max_change} if max_change is not None else {}
    return api.post("/v1/admin/rules/reload", params=params, headers=AUTH)


def test_a_change_moving_20_percent_is_refused_at_5_and_accepted_at_25(
        routed: tuple[Any, Path]) -> None:
    server, _ = routed
    with server.client() as api:
        version = api.get("/v1/rules").json()["version"]
        body = assert_problem(_reload(api, "status:5%"), 422)
        assert body["type"].endswith("change-refused")
        assert "status changes on 20.0% of the 10 leads of the last 7d (2 leads), more " \
               "than the 5% allowed" in body["detail"]
        assert "leadrouter rules replay" in body["detail"] and "--since 7d" in body["detail"]
        assert body["refusals"] == [{"field": "status", "changed": 2, "replayed": 10,
                                     "percent": 20.0, "limit": 5.0}]
        rules = api.get("/v1/rules").json()
        assert rules["version"] == version  # the live ruleset is untouched
        assert rules["last_rejected"]["attempted_version"] != version
        r = api.post("/v1/rules/evaluate", json=lead(email="after.refusal@co.example"))
        assert r.json()["evaluation"]["status"] == "mql"  # the live rules still decide
        ok = _reload(api, "status:25%,owner:100%")
        assert ok.status_code == 200, ok.text
        assert ok.json()["changed"] is True and ok.json()["version"] != version
        r = api.post("/v1/leads", json=lead(email="after.reload@co.example"))
        assert r.json()["status"] == "sql"


def test_bad_max_change_syntax_is_a_clear_error(routed: tuple[Any, Path]) -> None:
    server, live = routed
    with server.client() as api:
        version = api.get("/v1/rules").json()["version"]
        for bad in ("status", "status:5", "colour:5%", "status:500%"):
            body = assert_problem(_reload(api, bad), 422)
            hint = "at most 100%" if bad.endswith("500%") else "e.g. status:5%"
            assert f"max-change {bad!r}" in body["detail"] and hint in body["detail"], body
        assert api.get("/v1/rules").json()["version"] == version
    with pytest.raises(SettingsError, match="LEADROUTER_RELOAD_MAX_CHANGE"):
        create_app(Settings(reload_max_change="status=5", rules_dir=str(live),
                            require_rules_tests=False))


def test_the_setting_gates_every_admin_reload(start_service: Callable[..., Any],
                                              tmp_path: Path) -> None:
    live = write_rules(tmp_path / "live")
    server = start_service(rules_dir=str(live), require_rules_tests=False,
                           reload_max_change="status:5%")
    with server.client() as api:
        _route(api)
        (live / "scoring.yaml").write_text(SQL_AT_50)
        assert assert_problem(_reload(api, None), 422)["type"].endswith("change-refused")
        assert _reload(api, "status:30%").status_code == 200  # the parameter overrides it


def test_rules_check_max_change(routed: tuple[Any, Path], redis_url: str) -> None:
    _, live = routed  # live/ holds the candidate now

    def check(*extra: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["rules", "check", str(live), "--redis-url", redis_url, *extra])
        return code, out.getvalue(), err.getvalue()

    code, out, _ = check("--max-change", "status:5%")
    assert code == 1
    assert "refused: status changes on 20.0% of the 10 leads" in out
    assert f"leadrouter rules replay {live} --since 7d" in out
    code, out, _ = check("--max-change", "status:25%")
    assert code == 0 and "within the limits" in out
    code, out, err = check("--max-change", "status")
    assert code == 2 and "write FIELD:PERCENT%" in err and out == ""


def test_the_setting_gates_the_file_watcher_too(start_service: Callable[..., Any],
                                                tmp_path: Path) -> None:
    live = write_rules(tmp_path / "live")
    server = start_service(rules_dir=str(live), require_rules_tests=False,
                           reload_max_change="status:5%", reload_poll_seconds=0.1)
    with server.client() as api:
        _route(api)
        version = api.get("/v1/rules").json()["version"]
        (live / "scoring.yaml").write_text(SQL_AT_50)
        deadline = time.monotonic() + 15
        while api.get("/v1/rules").json()["last_rejected"] is None:
            assert time.monotonic() < deadline, "the watcher never tried the change"
            time.sleep(0.1)
        rules = api.get("/v1/rules").json()
    assert rules["version"] == version
    assert rules["last_rejected"]["reason"] == "file change"
    assert "status changes on 20.0%" in rules["last_rejected"]["errors"][0]
