"""``/schema/swagger`` and ``/schema/redoc`` render from the vendored assets with the network
closed to everything but the service: Chromium resolves no other host, and every request the
page made is checked to have gone to the service."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _browser import CHROMIUM, Page, chromium
from _console import goto, screenshot, wait_until

pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                reason="chromium is not installed")

# Every host name fails to resolve except the service's address: a CDN is unreachable.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"
_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


@pytest.fixture
def offline() -> Iterator[Callable[[], Page]]:
    with chromium(OFFLINE) as open_page:
        yield open_page


def _requested(page: Page) -> list[str]:
    return [e["params"]["request"]["url"] for e in page.events
            if e.get("method") == "Network.requestWillBeSent"]


def _operations(base: str, *, per_tag: bool = False) -> int:
    """The operations the service publishes (``per_tag``: once under each of its tags, as
    Swagger UI lists them)."""
    doc = httpx.get(f"{base}/schema/openapi.json", timeout=10).json()
    return sum(max(1, len(op.get("tags", []))) if per_tag else 1
               for item in doc["paths"].values() for m, op in item.items() if m in _METHODS)


def _only_the_service(urls: list[str], base: str) -> None:
    assert urls, "no request recorded"
    elsewhere = [u for u in urls if not u.startswith((base, "data:", "blob:"))]
    assert not elsewhere, elsewhere


def test_swagger_renders_every_operation_offline(start_service: Callable[..., Any],
                                                 offline: Callable[[], Page],
                                                 tmp_path: Path) -> None:
    server = start_service()
    page = offline()
    page.send("Network.enable")
    page.send("Page.enable")
    # the CDN litestar would use is unreachable from this browser
    assert page.js("fetch('https://cdn.jsdelivr.net/npm/swagger-ui-dist/').then(() => 'up', "
                   "() => 'down')") == "down"
    goto(page, f"{server.url}/schema/swagger")
    expected = _operations(server.url, per_tag=True)
    shown = wait_until(page, f"document.querySelectorAll('.opblock').length >= {expected} "
                             "&& document.querySelectorAll('.opblock').length")
    assert shown == expected
    assert "leadrouter" in page.js("document.querySelector('.info .title').textContent")
    screenshot(page, tmp_path, "swagger", full=False)
    _only_the_service(_requested(page), server.url)


def test_redoc_renders_offline(start_service: Callable[..., Any], offline: Callable[[], Page],
                               tmp_path: Path) -> None:
    server = start_service()
    page = offline()
    page.send("Network.enable")
    page.send("Page.enable")
    goto(page, f"{server.url}/schema/redoc")
    expected = _operations(server.url)
    shown = wait_until(page, "document.querySelectorAll('[data-section-id*=\"operation/\"]')"
                             ".length")
    assert shown >= expected * 0.9, (shown, expected)
    assert "/v1/leads" in page.js("document.body.textContent")
    screenshot(page, tmp_path, "redoc", full=False)
    _only_the_service(_requested(page), server.url)
