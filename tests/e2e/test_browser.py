"""End to end in a real browser: headless Chromium (Debian's ``chromium``) opens an HTML page,
a person's worth of typing fills the form, the form posts to a running leadrouter, the browser
follows the 303 to the thank-you page, and the routed lead is found through the API.

Driven over the Chrome DevTools Protocol (websocket) with no extra dependency. Skipped when no
chromium binary is installed (CI installs it: see .ci/run).
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _browser import CHROMIUM, Page, chromium
from _service import AUTH, free_port, write_rules

# In CI (CI=true) a missing browser is a failure, not a skip: .ci/run installs it.
pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                reason="chromium is not installed")

FORM_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Contact sales</title></head>
<body>
<form id="contact" action="{action}" method="POST">
  <input name="first_name" placeholder="First name">
  <input name="last_name" placeholder="Last name">
  <input name="email" type="email" placeholder="Work email">
  <input name="company" placeholder="Company">
  <input name="title" placeholder="Title">
  <select name="country"><option value="US">United States</option>
    <option value="DE">Germany</option></select>
  <input name="00N5e00000Size" placeholder="Employees">
  <textarea name="description"></textarea>
  <input type="hidden" name="lead_source" value="Website">
  <input type="hidden" name="retURL" value="{thanks}">
  <div style="position:absolute;left:-9999px" aria-hidden="true">
    <input name="website_url" tabindex="-1" autocomplete="off">
  </div>
  <input type="hidden" name="lr_started">
  <button type="submit">Send</button>
</form>
<script>document.querySelector('[name=lr_started]').value = Date.now();</script>
</body></html>
"""
THANKS_PAGE = "<!doctype html><title>Thanks</title><h1>Thank you!</h1>"

INTAKE = """\
forms:
  browser:
    thank_you: {site}/thanks.html
    redirect_hosts: [127.0.0.1]
    origins: [{site}]
    honeypot: website_url
    min_fill_seconds: 1
    rate_limit: 30/min
    fields:
      00N5e00000Size: employees
"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static web server for the page with the form (another origin than leadrouter)."""
    root = tmp_path / "site"
    root.mkdir()
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def browser() -> Iterator[Callable[[], Page]]:
    with chromium() as open_page:
        yield open_page


def test_real_browser_submits_form_and_lead_is_routed(
        start_service: Callable[..., Any], tmp_path: Path, site: tuple[str, Path],
        browser: Callable[[], Page]) -> None:
    origin, root = site
    rules = write_rules(tmp_path / "rules", {"intake.yaml": INTAKE.format(site=origin)})
    server = start_service(rules_dir=str(rules))
    (root / "form.html").write_text(FORM_PAGE.format(
        action=f"{server.url}/v1/forms/browser", thanks=f"{origin}/thanks.html?from=form"))
    (root / "thanks.html").write_text(THANKS_PAGE)

    page = browser()
    page.send("Page.enable")
    page.send("Page.navigate", url=f"{origin}/form.html")
    page.wait_for("Page.loadEventFired")
    assert page.js("document.title") == "Contact sales"
    # type like a person: focus each field and insert the text
    for name, text in (("first_name", "Linus"), ("last_name", "Browser"),
                       ("email", "linus.browser@bigcorp.example"), ("company", "BigCorp"),
                       ("title", "VP Sales"), ("00N5e00000Size", "2,500"),
                       ("description", "Real browser, real form")):
        page.js(f"document.querySelector('[name=\"{name}\"]').focus()")
        page.send("Input.insertText", text=text)
    page.js("document.querySelector('[name=country]').value = 'US'")
    time.sleep(1.2)  # a person takes longer than the form's minimum fill time
    page.js("document.querySelector('button[type=submit]').click()")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        page.wait_for("Page.loadEventFired")
        if page.js("location.pathname") == "/thanks.html":
            break
    assert page.js("location.href") == f"{origin}/thanks.html?from=form"
    assert page.js("document.querySelector('h1').textContent") == "Thank you!"

    with httpx.Client(base_url=server.url, timeout=10) as api:
        ids = api.get("/v1/people/linus.browser@bigcorp.example", headers=AUTH).json()["leads"]
        assert len(ids) == 1
        decision = api.get(f"/v1/leads/{ids[0]}").json()
    assert decision["status"] == "mql"
    assert decision["assignment"]["pool"] == "rr" and decision["assignment"]["owner"]
    assert decision["score"]["fit"] == 35  # 2,500 employees and the US
