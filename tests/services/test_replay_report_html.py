"""The HTML replay report in a real browser: headless Chromium (Debian's ``chromium``) opens the
self-contained page from a file, offline, and the charts are drawn — every bar of the pool,
owner and score charts laid out with the height its count gives it, the heat table coloured.
A screenshot is left in the test's tmp dir (its path is printed). Driven over the DevTools
Protocol like tests/e2e/test_browser.py; outside CI a missing chromium skips, in CI it fails."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _browser import CHROMIUM, Page, chromium
from _ci import unavailable
from _replay_data import build

from router.services.replay_render import render


@pytest.fixture
def tab() -> Iterator[Page]:
    if CHROMIUM is None:
        unavailable("chromium is not installed (apt-get install chromium)")
    with chromium("--window-size=1200,900", reply_timeout=30) as open_page:
        yield open_page()


def test_html_is_self_contained() -> None:
    page = render(build(), "html").decode()
    assert "<script" not in page
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', page)  # nothing fetched
    assert page.count("<svg") == 3 and "class=\"heat\"" in page


def test_html_report_charts_are_drawn_in_chromium(tab: Page, tmp_path: Path) -> None:
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
