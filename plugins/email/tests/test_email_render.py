"""The HTML part of the email as a mail client shows it: rendered in headless Chromium
(tests/_browser.py), the three action buttons are visible links to the signed URLs, the due
time in the rep's zone is on the page, and the page fetches nothing. With
``LEADROUTER_DOCS_SCREENSHOTS=1`` the screenshot is written to docs/notifications/email.png."""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _browser import CHROMIUM, Page, chromium
from _ci import unavailable
from leadrouter_email import build
from leadrouter_sdk.notify import notice
from leadrouter_sdk.testing import make_event

DOCS = Path(__file__).resolve().parents[3] / "docs" / "notifications"
LINKS = {a: f"https://leads.example.com/a/{a}-token" for a in ("accept", "contacted", "reject")}


@pytest.fixture
def tab() -> Iterator[Page]:
    if CHROMIUM is None:
        unavailable("chromium is not installed (apt-get install chromium)")
    with chromium("--window-size=700,900", reply_timeout=30) as open_page:
        yield open_page()


def _html() -> str:
    event = make_event(
        "lead.assigned", lead_id="ld_01hx3k9z", owner="alice", pool="na-enterprise",
        owner_timezone="America/Los_Angeles", due_at=dt.datetime(2026, 3, 2, 17, 10,
                                                                  tzinfo=dt.UTC),
        links={**LINKS, "expires_at": "2026-03-03T17:10:00Z"},
        decision={"lead": {"first_name": "Ann", "last_name": "Lee", "title": "CTO",
                           "company": "Acme Robotics", "employees": 1200, "country": "US"},
                  "score": {"total": 87, "grade": "A"},
                  "explanation": [
                      {"stage": "qualification", "outcome": "sql", "rule": "q.sql.score"},
                      {"stage": "territories", "outcome": "na-west", "rule": "na-west"},
                      {"stage": "segments", "outcome": "enterprise", "rule": "enterprise"},
                      {"stage": "assignment", "outcome": "alice",
                       "detail": "round robin in pool na-enterprise"}]})
    msg = build(notice(event), sender="leadrouter <lr@acme.example>",
                to="alice@acme.example", domain="acme.example")
    html = msg.get_body(("html",))
    assert html is not None
    return str(html.get_content())


def test_html_email_renders_with_its_buttons(tab: Page, tmp_path: Path) -> None:
    html = _html()
    assert not re.search(r'src\s*=', html) and "<script" not in html  # nothing fetched
    path = tmp_path / "email.html"
    path.write_text(html, encoding="utf-8")
    tab.send("Page.enable")
    tab.send("Page.navigate", url=path.as_uri())
    deadline = time.monotonic() + 20
    while tab.js("document.readyState") != "complete" and time.monotonic() < deadline:
        time.sleep(0.05)
    buttons = tab.js("""[...document.querySelectorAll('a')].map(a => {
        const r = a.getBoundingClientRect();
        return {text: a.innerText, href: a.href, w: r.width, h: r.height};
    })""")
    assert [(b["text"], b["href"]) for b in buttons] == [
        ("Accept", LINKS["accept"]), ("Mark contacted", LINKS["contacted"]),
        ("Reject", LINKS["reject"])]
    assert all(b["w"] > 40 and b["h"] > 20 for b in buttons)  # drawn as buttons
    text = tab.js("document.body.innerText")
    assert "Mon 2 Mar 2026, 09:10 PST (America/Los_Angeles)" in text
    assert "round robin in pool na-enterprise" in text
    assert "These links work once, until Tue 3 Mar 2026, 09:10 PST" in text
    shot = tab.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    png = base64.b64decode(shot["data"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("LEADROUTER_DOCS_SCREENSHOTS"):
        DOCS.mkdir(exist_ok=True)
        (DOCS / "email.png").write_bytes(png)
