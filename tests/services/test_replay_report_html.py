"""The HTML replay report in a real browser: headless Chromium (Debian's ``chromium``) opens the
self-contained page from a file, offline, and the charts are drawn — every bar of the pool,
owner and score charts laid out with the height its count gives it, the heat table coloured.
A screenshot is left in the test's tmp dir (its path is printed). Driven over the DevTools
Protocol like tests/e2e/test_browser.py; outside CI a missing chromium skips, in CI it fails."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _ci import unavailable
from _replay_data import build
from _service import free_port
from websockets.sync.client import ClientConnection, connect

from router.services.replay_render import render

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class _Tab:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws, self.next_id = ws, 0

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=30))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def js(self, expression: str) -> Any:
        return self.send("Runtime.evaluate", expression=expression,
                         returnByValue=True)["result"].get("value")


@pytest.fixture
def tab() -> Iterator[_Tab]:
    if CHROMIUM is None:
        unavailable("chromium is not installed (apt-get install chromium)")
    assert CHROMIUM is not None
    port, profile = free_port(), tempfile.mkdtemp(prefix="lr-chromium-")
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}",
         f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
         "--window-size=1200,900", "about:blank"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError, ValueError):
                pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list",
                                              timeout=2).json() if t.get("type") == "page"]
                if pages:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("chromium's DevTools endpoint did not come up")
            time.sleep(0.1)
        with connect(pages[0]["webSocketDebuggerUrl"], max_size=2**25,
                     open_timeout=10) as ws:
            yield _Tab(ws)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


def test_html_is_self_contained() -> None:
    page = render(build(), "html").decode()
    assert "<script" not in page
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', page)  # nothing fetched
    assert page.count("<svg") == 3 and "class=\"heat\"" in page


def test_html_report_charts_are_drawn_in_chromium(tab: _Tab, tmp_path: Path) -> None:
    report = build()
    path = tmp_path / "replay.html"
    path.write_bytes(render(report, "html"))
    tab.send("Page.enable")
    tab.send("Page.navigate", url=path.as_uri())
    deadline = time.monotonic() + 20
    while tab.js("document.readyState") != "complete" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tab.js("document.title") == "Replay report"
    charts = tab.js("""[...document.querySelectorAll('svg')].map(s => {
        const r = s.getBoundingClientRect();
        return {cls: s.getAttribute('class'), w: r.width, h: r.height,
                bars: [...s.querySelectorAll('rect.bar')].map(
                    b => Math.round(b.getBoundingClientRect().height))};
    })""")
    by_class = {c["cls"]: c for c in charts}
    assert set(by_class) == {"chart-pool", "chart-owner", "chart-score"}
    for chart in charts:
        assert chart["w"] > 100 and chart["h"] > 100, chart
    # Bars are before/after pairs, in the report's order, scaled to the largest count (180px).
    pools = by_class["chart-pool"]["bars"]
    assert len(pools) == 2 * len([v for v in report.by_pool if v.key is not None])
    assert pools[:2] == [180, 162]  # rr: 10 before, 9 after
    owners = by_class["chart-owner"]["bars"]
    assert owners[:2] == [180, 120]  # bob: 6 before (the largest count), 4 after
    scores = by_class["chart-score"]["bars"]
    assert len(scores) == 24 and sum(1 for h in scores if h > 0) == 6
    heat = tab.js("""[...document.querySelectorAll('table.heat td')]
        .filter(td => getComputedStyle(td).backgroundColor !== 'rgba(0, 0, 0, 0)').length""")
    assert heat == 2  # mql->mql and sql->mql have leads
    shot = tab.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    png = base64.b64decode(shot["data"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    (tmp_path / "replay.png").write_bytes(png)
    print(f"screenshot: {tmp_path / 'replay.png'}")
