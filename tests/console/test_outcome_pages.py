"""``/ui/funnel`` and ``/ui/calibration`` in a real browser (Debian's headless Chromium,
tests/_browser.py) over a real service and Valkey, with leads routed through the API and
their outcomes posted to ``POST /v1/leads/{id}/outcome`` (tests/_outcomes_data.py): both
pages render their charts with the data, a bad window is shown on the page."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _browser import CHROMIUM, Page, chromium
from _console import browser_sign_in, goto, screenshot, text_of
from _outcomes_data import dataset, post_leads, post_outcomes
from _service import ADMIN_TOKEN

pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                reason="chromium is not installed")

SHIPPED = Path(__file__).resolve().parents[2] / "rules"


@pytest.fixture
def browser() -> Iterator[Callable[[], Page]]:
    with chromium() as open_page:
        yield open_page


def test_funnel_and_calibration_pages_render_with_data(
        start_service: Callable[..., Any], browser: Callable[[], Page],
        tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(SHIPPED, rules)
    server = start_service(rules_dir=str(rules))
    leads = dataset(120, seed=5)
    post_leads(server.url, leads)
    post_outcomes(server.url, leads)
    converted = sum(p.converts for p in leads)
    assert converted > 0
    page = browser()
    page.send("Page.enable")
    browser_sign_in(page, server.url, ADMIN_TOKEN)

    goto(page, f"{server.url}/ui/funnel?since=1d&by=grade")
    assert text_of(page, "h1") == "Funnel"
    assert page.js("document.querySelectorAll('main svg.chart').length") == 2
    bars = page.js("[...document.querySelectorAll('svg.chart')[0].querySelectorAll('title')]"
                   ".map(t => t.textContent)")
    assert f"routed: {len(leads)}" in bars and f"opportunity: {converted}" in bars
    grades = Counter({p.grade or "(none)": 0 for p in leads})
    grades.update(p.grade or "(none)" for p in leads if p.converts)
    shown = page.js("[...document.querySelectorAll('svg.chart')[1].querySelectorAll('title')]"
                    ".map(t => t.textContent)")
    assert sorted(shown) == sorted(f"{g}: {n}" for g, n in grades.items())
    # both pages are in the nav, the current one highlighted like the others
    assert page.js("document.querySelector('nav a[aria-current=page]').getAttribute('href')"
                   ) == "/ui/funnel"
    assert page.js("!!document.querySelector('nav a[href=\"/ui/calibration\"]')")
    screenshot(page, tmp_path, "funnel")

    goto(page, f"{server.url}/ui/calibration?since=1d")
    assert text_of(page, "h1") == "Score calibration"
    main = text_of(page, "main")
    assert f"{converted} of {len(leads)} decided leads reached opportunity" in main
    dots = page.js("document.querySelectorAll('svg.chart')[0].querySelectorAll('circle')"
                   ".length")
    assert dots == len({p.grade or "(no grade)" for p in leads})
    assert page.js("document.querySelectorAll('svg.chart').length") == 3
    assert "bant.timeline.immediate" in main and "too little data" in main
    assert page.js("document.querySelector('nav a[aria-current=page]').getAttribute('href')"
                   ) == "/ui/calibration"
    screenshot(page, tmp_path, "calibration", full=False)

    goto(page, f"{server.url}/ui/calibration?since=tomorrow")
    assert "since" in text_of(page, "[role=alert]")
    assert text_of(page, "h1") == "Score calibration"
