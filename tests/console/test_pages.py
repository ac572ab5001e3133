"""What the console's status, rules, playground, replay and SLA pages say, over plain HTTP
against a real service and Valkey (the browser tests, test_console_browser.py, walk them)."""

from __future__ import annotations

import contextlib
import html
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from _console import csrf_of, sign_in
from _service import ADMIN_TOKEN, AUTH, write_rules


@contextlib.contextmanager
def _admin(server: Any) -> Iterator[httpx.Client]:
    with server.client() as client:
        assert sign_in(client, ADMIN_TOKEN).status_code == 303
        yield client


def test_rejected_reload_is_shown_with_file_and_line(start_service: Callable[..., Any],
                                                     tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules")
    server = start_service(rules_dir=str(rules))
    with _admin(server) as c:
        assert "No reload was rejected" in c.get("/ui/rules").text
        scoring = rules / "scoring.yaml"
        scoring.write_text(scoring.read_text() + "\nbroken: [\n")
        assert c.post("/v1/admin/rules/reload", headers=AUTH).status_code == 422
        page = html.unescape(c.get("/ui/rules").text)
        assert "scoring.yaml:" in page and "YAML syntax error" in page
        assert f"{rules / 'scoring.yaml'}:" in page  # the file:line column
        assert "Last rejected reload" in c.get("/ui/status").text
        assert "details</a>" in c.get("/ui/status").text


def test_playground_names_the_field_to_fix(start_service: Callable[..., Any]) -> None:
    with _admin(start_service()) as c:
        token = csrf_of(c.get("/ui/rules/playground").text)
        r = c.post("/ui/rules/playground", data={"_csrf": token,
                                                  "lead": '{"email": "a@b.example", '
                                                          '"employees": "lots"}'})
        text = html.unescape(r.text)
        assert r.status_code == 200 and "$.employees: Expected a whole number" in text
        assert "fix that field" in text and 'id="decision"' not in text
        r = c.post("/ui/rules/playground", data={"_csrf": token, "lead": "{'email': 1}"})
        text = html.unescape(r.text)
        assert "line 1, column 2" in text and "double quotes" in text
        r = c.post("/ui/rules/playground", data={"_csrf": token, "lead": "  "})
        assert "paste a lead as a JSON object" in html.unescape(r.text)


def test_playground_writes_nothing(start_service: Callable[..., Any]) -> None:
    with _admin(start_service()) as c:
        before = c.get("/v1/status").json()["leads"]["routed"]
        token = csrf_of(c.get("/ui/rules/playground").text)
        r = c.post("/ui/rules/playground", data={"_csrf": token,
                                                  "lead": '{"email": "jo@big.example", '
                                                          '"employees": 5000, "country": "US"}'})
        assert r.status_code == 200 and 'id="decision"' in r.text
        assert c.get("/v1/status").json()["leads"]["routed"] == before
        assert c.get("/v1/people/jo@big.example", headers=AUTH).json()["leads"] == []


def test_replay_refuses_a_broken_directory_with_its_errors(
        start_service: Callable[..., Any], tmp_path: Path) -> None:
    broken = write_rules(tmp_path / "candidate", {"routing.yaml": "routing: [\n"})
    with _admin(start_service()) as c:
        token = csrf_of(c.get("/ui/rules/replay").text)
        r = c.post("/ui/rules/replay", data={"_csrf": token, "directory": str(broken),
                                              "limit": "10"})
        text = html.unescape(r.text)
        assert r.status_code == 200 and "nothing was replayed" in text
        assert "routing.yaml:" in text and "iframe" not in text
        r = c.post("/ui/rules/replay", data={"_csrf": token, "directory": str(broken),
                                              "limit": "many"})
        assert "limit: 'many' is not a number" in html.unescape(r.text)


def test_sla_page_explains_a_bad_window(start_service: Callable[..., Any]) -> None:
    with _admin(start_service()) as c:
        r = c.get("/ui/sla", params={"since": "yesterday"})
        text = html.unescape(r.text)
        assert r.status_code == 200 and "since='yesterday': give an ISO 8601 time" in text
        r = c.get("/ui/sla", params={"since": "2026-03-02", "until": "2026-03-01"})
        assert "is after until" in html.unescape(r.text)
        assert c.get("/ui/sla", params={"since": "x" * 65}).status_code == 400


def test_status_says_how_the_rules_watcher_polls_and_settles(
        start_service: Callable[..., Any], tmp_path: Path) -> None:
    server = start_service(rules_dir=str(write_rules(tmp_path / "rules")),
                           reload_poll_seconds=30, reload_settle_seconds=0.5)
    with _admin(server) as c:
        text = " ".join(html.unescape(c.get("/ui/status").text).split())
    assert ("checks the files every 30 s, reloads a change once the files have stayed the "
            "same for 0.5 s") in text
