"""The pure parts of calibration and tuning: the interval arithmetic
(router/services/calibration_stats.py), the counts (router/services/calibration.py), the
points on the ruleset's scale (router/services/tune.py) and the scoring file rewrite
(router/services/tune_yaml.py). The end-to-end tests over the real service are in
tests/services/test_tune.py."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from router.services.calibration import LeadFacts, Tally, speed_band
from router.services.calibration_stats import auc, lift, top_decile_lift, wilson
from router.services.tune import TooFew, granularity, propose
from router.services.tune_yaml import rewrite_points

SHIPPED = Path(__file__).resolve().parents[2] / "rules" / "scoring.yaml"


def test_wilson_matches_the_published_values() -> None:
    # Newcombe (1998), Table I: 0/10 → 0-0.2775, 15/148 → 0.0624-0.1605
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(15, 148) == pytest.approx((0.0624, 0.1605), abs=1e-4)
    assert wilson(10, 10)[1] == pytest.approx(1.0) and wilson(0, 0) == (0.0, 1.0)


def test_lift_is_the_katz_interval_of_the_rate_ratio() -> None:
    ratio, low, high = lift(30, 100, 20, 200) or (0, 0, 0)
    assert ratio == pytest.approx(3.0)
    se = math.sqrt(1 / 30 - 1 / 100 + 1 / 20 - 1 / 200)
    assert (low, high) == pytest.approx((3 * math.exp(-1.959964 * se),
                                         3 * math.exp(1.959964 * se)), rel=1e-5)
    zero = lift(0, 200, 40, 400)
    assert zero is not None and zero[0] == 0 and 0 < zero[1] < zero[2] < 1
    assert lift(3, 10, 0, 0) is None


def test_auc_and_top_decile_lift_agree_with_their_definitions() -> None:
    from sklearn.metrics import roc_auc_score

    rnd = random.Random(3)
    labels = [rnd.random() < 0.2 for _ in range(500)]
    scores = [rnd.choice(range(0, 100, 5)) + (20 if y else 0) for y in labels]
    assert auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))
    assert auc([1.0, 2.0], [True, True]) == 0.5
    ordered = [float(i) for i in range(100)]
    top = [i >= 90 for i in range(100)]  # every conversion in the top 10%
    assert top_decile_lift(ordered, top) == pytest.approx(10.0)
    assert top_decile_lift([1.0] * 100, top) == pytest.approx(1.0)  # ties: average rate


def _facts(i: int, *, grade: str | None, rules: set[str], converted: bool,
           speed: int | None = None, score: float = 50) -> LeadFacts:
    return LeadFacts(lead_id=f"ld_{i}", score=score, grade=grade, rules=frozenset(rules),
                     pool="p" if i % 2 else None, speed_ms=speed, converted=converted)


def test_tally_counts_grades_bands_rules_and_flags_disagreeing_points() -> None:
    tally = Tally(band_width=20)
    rows = []
    for i in range(400):
        good = i % 4 == 0  # matched by "r.good": converts half the time, others 13%
        converted = (i % 8 == 0) if good else (i % 10 == 1)
        rows.append(_facts(i, grade="A" if good else "C", rules={"r.good"} if good else
                           {"r.bad"}, converted=converted, score=85 if good else 45,
                           speed=60_000 if i % 3 else None))
    tally.extend(rows)
    report = tally.report(target="opportunity", grades=[("A", 80), ("B", 60), ("C", 40)],
                          rules={"r.good": ("fit", -10.0), "r.bad": ("fit", 10.0),
                                 "r.never": ("fit", 5.0)})
    grades = {b.key: (b.leads, b.converted) for b in report.by_grade}
    assert grades == {"A": (100, 50), "C": (300, 40)}
    assert [b.key for b in report.by_band] == ["80 to 100", "40 to 60"]
    rules = {r.rule: r for r in report.rules}
    assert rules["r.good"].verdict == "disagrees" and "negative points" in rules["r.good"].note
    assert rules["r.bad"].verdict == "disagrees" and "positive points" in rules["r.bad"].note
    assert rules["r.never"].verdict == "too little data" and rules["r.never"].matched == 0
    assert report.top.lead_share == 0.25 and report.top.recall == pytest.approx(50 / 90)
    assert report.top.separation == pytest.approx(0.5 / (40 / 300))
    assert not report.top.meets_concentration and not report.top.meets_separation  # 56%
    speeds = {(c.grade, c.group): c.leads for c in report.by_speed}
    assert sum(speeds.values()) == 400 and ("A", "not touched") in speeds
    assert speed_band(4 * 60_000) == "< 5 min" and speed_band(2 * 3_600_000) == "1-24 h"


def test_granularity_of_the_shipped_points_is_five() -> None:
    data = YAML(typ="safe").load(SHIPPED.read_text())
    points = [r["points"] for group in data["scoring"].values() for r in group]
    assert granularity(points) == 5
    assert granularity([10, 20, -30, 3]) == 10 and granularity([3, 7]) == 1


def test_tune_refuses_below_200_conversions() -> None:
    rows = [_facts(i, grade="A", rules={"a"}, converted=i < 199) for i in range(1000)]
    with pytest.raises(TooFew) as caught:
        propose(rows, {"a": ("fit", 10.0)}, target="opportunity")
    assert caught.value.have == 199 and "at least 200" in str(caught.value)


def test_rewrite_points_changes_only_the_points_tokens() -> None:
    text = SHIPPED.read_text()
    new, done = rewrite_points(text, {"fit.country.core": 25, "eng.demo": -2.5,
                                      "no.such.rule": 1})
    assert sorted(done) == ["eng.demo", "fit.country.core"]
    changed = [(a, b) for a, b in zip(text.splitlines(), new.splitlines(), strict=True)
               if a != b]
    assert changed == [("      points: 10", "      points: 25"),
                       ("      points: 30", "      points: -2.5")]
    data = YAML(typ="safe").load(new)
    demo = next(r for r in data["scoring"]["engagement"] if r["id"] == "eng.demo")
    assert demo["points"] == -2.5
