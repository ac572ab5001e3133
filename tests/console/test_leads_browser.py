"""The lead, leads, queues and reps & pools pages in a real browser (Debian's headless
Chromium, tests/_browser.py) against a real service and Valkey: a lead named like a script
renders as text (no dialog, no script ran), the waterfall's bars add up to the score in the
DOM, why-not names the rep out of office, the leads table filtered to a queue (htmx swap and
the bookmarkable URL), and a rep set out of office from the page leaves the pool's eligible
members. Screenshots of each page are saved in the test's tmp_path (docs/console.md)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _browser import CHROMIUM, Page, chromium
from _console import browser_sign_in, fill, goto, screenshot, submit, text_of, wait_until
from _service import ADMIN_TOKEN, AUTH, lead

# In CI (CI=true) a missing browser is a failure, not a skip: .ci/run installs it.
pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                reason="chromium is not installed")

XSS = "<script>alert(1)</script>"
_TRAP = "window.__dialogs = []; window.alert = (m) => window.__dialogs.push(String(m));"


@pytest.fixture
def browser() -> Iterator[Callable[[], Page]]:
    with chromium() as open_page:
        yield open_page


def _post(client: Any, **fields: Any) -> dict[str, Any]:
    r = client.post("/v1/leads", json=lead(**fields), headers=AUTH)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def test_lead_named_like_a_script_renders_as_text(start_service: Callable[..., Any],
                                                  browser: Callable[[], Page],
                                                  tmp_path: Path) -> None:
    server = start_service()
    with server.client() as c:
        d = _post(c, first_name=XSS, last_name=None, company=f"{XSS} Inc",
                  email="xss@acme.example")
    page = browser()
    page.send("Page.enable")
    page.send("Page.addScriptToEvaluateOnNewDocument", source=_TRAP)
    browser_sign_in(page, server.url, ADMIN_TOKEN)
    goto(page, f"{server.url}/ui/leads/{d['lead_id']}")
    assert text_of(page, "#lead-title").startswith(XSS)
    assert XSS + " Inc" in text_of(page, "#lead-fields")
    assert page.js("document.querySelectorAll('main script').length") == 0
    assert page.js("window.__dialogs.length") == 0
    assert not [e for e in page.events if e.get("method") == "Page.javascriptDialogOpening"]
    screenshot(page, tmp_path, "lead-xss")
    goto(page, f"{server.url}/ui/leads")  # the list carries no lead fields but the id
    assert page.js("window.__dialogs.length") == 0


def test_leads_queues_lead_page_and_reps_in_the_browser(start_service: Callable[..., Any],
                                                        browser: Callable[[], Page],
                                                        tmp_path: Path) -> None:
    server = start_service()
    with server.client() as c:
        assert c.put("/v1/reps/r3", json={"status": "out_of_office",
                                          "until": "2031-01-02T03:04:00Z"},
                     headers=AUTH).status_code == 200
        routed = [_post(c, email=f"buyer{i}@acme.example") for i in range(3)]
        junk = [_post(c, email=f"junk{i}@acme.example", campaign="junk") for i in range(2)]
    page = browser()
    page.send("Page.enable")
    browser_sign_in(page, server.url, ADMIN_TOKEN)

    # the leads list, filtered to a queue through the form (htmx swaps the table)
    goto(page, f"{server.url}/ui/leads")
    wait_until(page, "window.htmx !== undefined")
    assert page.js("document.querySelectorAll('#leads-table tr[data-lead]').length") == 5
    screenshot(page, tmp_path, "leads")
    fill(page, "input[name=queue]", "review")
    submit(page, "#lead-filters", None)
    wait_until(page, "document.querySelectorAll('#leads-table tr[data-lead]').length === 2")
    shown = page.js("[...document.querySelectorAll('#leads-table tr[data-lead]')]"
                    ".map(r => r.dataset.lead)")
    assert shown == [junk[1]["lead_id"], junk[0]["lead_id"]]
    assert wait_until(page, "location.search.includes('queue=review') && location.search")

    goto(page, f"{server.url}/ui/queues")
    assert page.js("document.querySelector('tr[data-queue=review] .size').textContent") == "2"
    screenshot(page, tmp_path, "queues")
    goto(page, f"{server.url}/ui/queues/review")
    screenshot(page, tmp_path, "queue")

    # a lead's page: the waterfall adds up to the score; why not r3: out of office
    d = routed[-1]
    goto(page, f"{server.url}/ui/leads/{d['lead_id']}")
    points = page.js("[...document.querySelectorAll('svg.waterfall rect[data-points]')]"
                     ".map(r => Number(r.dataset.points))")
    total = page.js("Number(document.querySelector('svg.waterfall rect[data-total]')"
                    ".dataset.total)")
    assert points == [x["points"] for x in d["score"]["contributions"]] and len(points) == 3
    assert sum(points) == total == d["score"]["total"]
    why = text_of(page, "#why-not tr[data-rep=r3] .result")
    assert why == "excluded: out of office until 2031-01-02 03:04 UTC"
    assert "picked by round_robin" in text_of(page, "#why-not tr.picked .result")
    screenshot(page, tmp_path, "lead")

    # set r1 out of office from Reps & pools: it leaves pool rr's eligible members
    goto(page, f"{server.url}/ui/reps")
    eligible = "document.querySelector('#pool-rr tr[data-rep=r1] .eligibility').textContent"
    assert page.js(eligible).strip() == "eligible"
    page.js("document.querySelector('#rep-r1 select[name=status]').value = 'out_of_office'")
    page.js("document.querySelector('#rep-r1 input[name=until]').value = '2031-07-08T09:10'")
    submit(page, "#rep-r1 form", "/ui/reps")
    assert page.js(eligible).strip() == "no: out of office until 2031-07-08 09:10 UTC"
    screenshot(page, tmp_path, "reps")
