"""Helpers for the console tests (tests/console): sign in over plain HTTP (httpx keeps the
cookies), read the CSRF token a page carries, and drive the console in Chromium
(tests/_browser.py) with a screenshot of each page."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
from _browser import Page

CSRF = re.compile(r'name="_csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: httpx.Client, token: str) -> httpx.Response:
    """GET the sign-in form (its CSRF cookie and field), POST the token; the answer (303 to
    the console when it worked)."""
    form = client.get("/ui/login")
    assert form.status_code == 200, form.text
    return client.post("/ui/login", data={"token": token, "_csrf": csrf_of(form.text),
                                          "next": "/ui/status"})


def create_key(client: httpx.Client, admin: dict[str, str], *scopes: str,
               name: str = "") -> tuple[str, str]:
    """A new API key with ``scopes``: (the key, its id)."""
    r = client.post("/v1/admin/keys", json={"source": "*", "scopes": list(scopes),
                                            "name": name}, headers=admin)
    assert r.status_code == 201, r.text
    body = r.json()
    return body["key"], body["id"]


# -- in Chromium ------------------------------------------------------------------------------


def wait_until(page: Page, expression: str, timeout: float = 20) -> Any:
    """Poll ``expression`` until it is truthy (a navigation in between is retried)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = page.js(expression)
        except RuntimeError:  # the page navigated away while evaluating
            last = None
        if last:
            return last
        time.sleep(0.05)
    raise TimeoutError(f"{expression} stayed {last!r} for {timeout}s")


def goto(page: Page, url: str) -> None:
    """Open ``url`` (redirects followed) and wait for the page's load event."""
    page.events.clear()
    page.send("Page.navigate", url=url)
    page.wait_for("Page.loadEventFired")
    wait_until(page, "document.readyState === 'complete'")


def submit(page: Page, selector: str, path: str | None) -> None:
    """Submit the form ``selector`` (a real click on its button); with ``path``, wait for the
    page it loads there (None: an htmx form, which swaps part of the page instead)."""
    page.events.clear()
    page.js(f"document.querySelector({json.dumps(selector)})"
            ".querySelector('button[type=submit]').click()")
    if path is not None:
        page.wait_for("Page.loadEventFired")
        wait_until(page, f"location.pathname === {json.dumps(path)} "
                         "&& document.readyState === 'complete'")


def fill(page: Page, selector: str, text: str) -> None:
    page.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
            f"e.value = ''; e.focus(); }})()")
    page.send("Input.insertText", text=text)


def screenshot(page: Page, directory: Path, name: str, *, full: bool = True) -> Path:
    """The page as ``directory/name.png``, 1100 px wide as docs/console.md shows it (``full``:
    all of it, else the first 800 px)."""
    page.send("Emulation.setDeviceMetricsOverride", width=1100, height=800,
              deviceScaleFactor=1, mobile=False)
    shot = page.send("Page.captureScreenshot", format="png", captureBeyondViewport=full)
    png = base64.b64decode(shot["data"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000
    path = directory / f"{name}.png"
    path.write_bytes(png)
    return path


def browser_sign_in(page: Page, base: str, token: str) -> None:
    """Sign in on the sign-in page, then open the status page."""
    goto(page, f"{base}/ui/login")
    fill(page, "#token", token)
    page.events.clear()
    page.js("document.querySelector('form[action=\"/ui/login\"] button').click()")
    page.wait_for("Page.loadEventFired")
    wait_until(page, "location.pathname !== '/ui/login' && document.readyState === 'complete'")
    goto(page, f"{base}/ui/status")


def text_of(page: Page, selector: str) -> str:
    return str(page.js(f"document.querySelector({json.dumps(selector)})?.textContent ?? ''")
               ).strip()
