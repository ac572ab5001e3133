"""Errors under /ui for people: a refusal or a Redis outage is an HTML page for a browser (the
API's problem+json for a program), and an htmx form shows it in place — htmx 2 swaps no 4xx/5xx
by default (router/api/console/_errors.py, the layout's ``htmx-config``). Real service and
Valkey; the htmx cases in Debian's headless Chromium (tests/_browser.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _browser import CHROMIUM, Page, chromium
from _console import browser_sign_in, create_key, goto, sign_in, text_of, wait_until
from _service import ADMIN_TOKEN, AUTH, assert_problem

from router.state.embedded import EmbeddedValkey

needs_browser = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                   reason="chromium is not installed")
ALERT = "document.querySelector('#console-alert')?.textContent ?? ''"


@pytest.fixture
def browser() -> Iterator[Callable[[], Page]]:
    with chromium() as open_page:
        yield open_page


@needs_browser
def test_htmx_refusals_show_in_place(start_service: Callable[..., Any],
                                     browser: Callable[[], Page]) -> None:
    server = start_service()
    with server.client() as client:
        key, _ = create_key(client, AUTH, "viewer", name="Ana")
    page = browser()
    page.send("Page.enable")
    browser_sign_in(page, server.url, key)
    goto(page, f"{server.url}/ui/rules/playground")
    assert page.js(ALERT) == ""
    # an old or crafted page: the playground's htmx form posting a change a viewer may not make
    page.js("""(() => { const f = document.querySelector('#lead').form;
        f.setAttribute('hx-post', '/ui/rules/replay'); htmx.process(f); })()""")
    page.js("document.querySelector('#lead').form.querySelector('button').click()")
    shown = wait_until(page, ALERT)
    assert "Forbidden" in shown and "a viewer: this change needs the admin token" in shown
    # shown in place: still the same page, its form still there, no whole-page load
    assert page.js("location.pathname") == "/ui/rules/playground"
    assert page.js("!!document.querySelector('#lead')") and text_of(page, "h1") == \
        "Rules playground"
    # a wrong CSRF token (the session changed since the page was loaded): said so, in place
    goto(page, f"{server.url}/ui/rules/playground")
    page.js("""document.querySelector('.console')
        .setAttribute('hx-headers', '{"X-CSRF-Token": "stale"}')""")
    page.js("document.querySelector('#lead').form.querySelector('button').click()")
    shown = wait_until(page, ALERT)
    assert "CSRF token missing or wrong" in shown and "reload the page" in shown


def test_refusals_are_html_for_browsers_and_problems_for_programs(
        start_service: Callable[..., Any]) -> None:
    server = start_service()
    with server.client() as admin, server.client() as c:
        key, _ = create_key(admin, AUTH, "viewer")
        sign_in(c, key)
        data = {"_csrf": "wrong", "directory": "rules"}
        html = c.post("/ui/rules/replay", data=data, headers={"Accept": "text/html"})
        assert html.status_code == 403 and html.headers["content-type"].startswith("text/html")
        assert "CSRF token missing or wrong" in html.text and 'id="console-alert"' in html.text
        hx = c.post("/ui/rules/replay", data=data, headers={"HX-Request": "true"})
        assert hx.status_code == 403 and hx.headers["hx-retarget"] == "#console-alert"
        assert hx.headers["hx-reselect"] == "#console-alert"
        problem = assert_problem(c.post("/ui/rules/replay", data=data), 403)
        assert problem["title"] == "CSRF token missing or wrong"


@pytest.fixture
def own_valkey(tmp_path: Path) -> Iterator[EmbeddedValkey]:
    server = EmbeddedValkey(tmp_path / "valkey", port=0)
    server.start()
    yield server
    server.stop()


def test_redis_down_console_pages_answer_an_html_503(start_service: Callable[..., Any],
                                                      own_valkey: EmbeddedValkey) -> None:
    server = start_service(redis_url=own_valkey.url, retry_after_seconds=3)
    with server.client() as c:
        assert sign_in(c, ADMIN_TOKEN).status_code == 303
        assert c.get("/ui/leads", headers={"Accept": "text/html"}).status_code == 200
        own_valkey.stop()
        page = c.get("/ui/leads", headers={"Accept": "text/html,application/xhtml+xml"})
        assert page.status_code == 503 and page.headers["retry-after"] == "3"
        assert page.headers["content-type"].startswith("text/html")
        # the API's wording, as a page with a way back
        api = assert_problem(c.get("/v1/leads/ld_x", headers=AUTH), 503)
        assert api["detail"] in page.text and "reload it" in page.text
        assert api["type"].endswith("/state-unavailable")
        hx = c.get("/ui/reps", headers={"HX-Request": "true"})
        assert hx.status_code == 503 and hx.headers["hx-retarget"] == "#console-alert"
        assert "Service unavailable" in hx.text and hx.headers["retry-after"] == "3"
