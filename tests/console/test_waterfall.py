"""The score waterfall (router/services/lead_page.py ``waterfall``, router/api/console/
_waterfall.py): bars from the running total, the total last, the sum check, escaping."""

from __future__ import annotations

import re

from leadrouter_sdk import Assignment, Contribution, Decision, Score, Sla

from router.api.console._waterfall import waterfall_svg
from router.services.lead_page import waterfall


def _decision(total: float, *points: tuple[str, float, str | None]) -> Decision:
    contributions = tuple(Contribution(rule=r, group="fit", points=p, reason=why)
                          for r, p, why in points)
    return Decision(lead_id="ld_x", status="mql", territory=None, segment=None,
                    score=Score(total=total, grade=None, fit=total, bant=0, engagement=0,
                                contributions=contributions),
                    assignment=Assignment(), sla=Sla(), rules_version="v")


def test_bars_run_from_the_running_total_and_sum_to_the_score() -> None:
    bars, sums = waterfall(_decision(15, ("a", 25, None), ("b", -15, None), ("c", 5, None)))
    assert sums
    assert [(b.start, b.end) for b in bars] == [(0, 25), (25, 10), (10, 15), (0, 15)]
    assert bars[-1].total and bars[-1].label == "total"
    svg = str(waterfall_svg(bars))
    assert [float(x) for x in re.findall(r'data-points="([^"]+)"', svg)] == [25, -15, 5]
    assert re.findall(r'data-total="([^"]+)"', svg) == ["15"]
    assert svg.count("#c23b32") == 1  # the one negative bar is red


def test_a_score_the_contributions_do_not_explain_is_flagged() -> None:
    _, sums = waterfall(_decision(99, ("a", 25, None)))
    assert not sums


def test_labels_and_reasons_are_escaped() -> None:
    bars, _ = waterfall(_decision(1, ("<b>x</b>", 1, "<script>alert(1)</script>")))
    svg = str(waterfall_svg(bars))
    assert "<script>" not in svg and "<b>" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg and "&lt;b&gt;x&lt;/b&gt;" in svg
