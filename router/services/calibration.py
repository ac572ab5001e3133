"""Score calibration: does the score rank the leads that convert first? Pure: it is fed one
:class:`LeadFacts` per decided lead (router/services/outcome_reader.py reads them page by
page) and keeps counts only, so a window of a million leads costs a few dictionaries.

What :meth:`Tally.report` answers (docs/outcomes.md, "Calibrate"):

* conversion by grade and by score band, each with its count and 95% Wilson interval;
* the top grades (the ruleset's two highest, A and B as shipped): their share of the leads,
  their share of the conversions (recall) and their conversion rate (precision); the top
  grade's rate over the bottom grade's (separation); and where that stands against the goal
  "≥ 60% of conversions in ≤ 35% of leads, top ≥ 10x bottom";
* conversion by grade x speed-to-lead band and by grade x assigned pool, so the score's
  effect can be told apart from routing's;
* per scoring rule: conversion of the leads it matched vs those it did not, the lift with its
  interval, and a verdict — ``disagrees`` when the points and the lift point different ways
  (positive points while the whole interval is below 1, or the reverse), ``too little data``
  when fewer than :data:`MIN_EXPECTED` conversions are expected on either side at the
  window's overall rate, else ``ok``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

import msgspec

from router.services.calibration_stats import lift, wilson

__all__ = ["GOAL_LEADS", "GOAL_RECALL", "GOAL_SEPARATION", "MIN_EXPECTED", "NO_GRADE",
           "SPEED_BANDS", "Bucket", "CalibrationReport", "Cell", "LeadFacts", "RuleLift", "Tally",
           "TopGrades", "speed_band"]

K = TypeVar("K", bound=Hashable)
MIN_EXPECTED = 5.0  # conversions expected on each side of a rule before its lift is judged
GOAL_RECALL, GOAL_LEADS, GOAL_SEPARATION = 0.60, 0.35, 10.0

# Speed to lead: arrival → first accept/contacted (the SLA fields), in minutes.
SPEED_BANDS: tuple[tuple[str, float], ...] = (
    ("< 5 min", 5), ("5-60 min", 60), ("1-24 h", 24 * 60), ("> 24 h", math.inf))
NOT_TOUCHED = "not touched"
NO_GRADE = "(no grade)"  # a score below the lowest grade's threshold


class LeadFacts(msgspec.Struct, frozen=True, kw_only=True):
    """One decided lead as calibration and tuning see it."""

    lead_id: str
    score: float
    grade: str | None
    rules: frozenset[str]  # the scoring rules (and plugin scorers) that gave it points
    pool: str | None
    speed_ms: int | None  # arrival → first touch; None: never accepted/contacted
    converted: bool


class Bucket(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    leads: int
    converted: int
    rate: float
    low: float
    high: float


class Cell(msgspec.Struct, frozen=True, kw_only=True):
    grade: str
    group: str
    leads: int
    converted: int
    rate: float
    low: float
    high: float


class TopGrades(msgspec.Struct, frozen=True, kw_only=True):
    grades: tuple[str, ...]
    lead_share: float  # of all leads, in the top grades
    recall: float  # of all conversions, in the top grades
    precision: float  # conversion rate of the top grades
    top_grade: str | None
    bottom_grade: str | None
    separation: float | None  # top grade's rate / bottom grade's (None: bottom rate 0)
    meets_concentration: bool  # ≥ 60% of conversions in ≤ 35% of leads
    meets_separation: bool  # ≥ 10x
    goal: str


class RuleLift(msgspec.Struct, frozen=True, kw_only=True):
    rule: str
    group: str | None
    points: float | None
    matched: int
    matched_converted: int
    matched_rate: float
    unmatched: int
    unmatched_converted: int
    unmatched_rate: float
    lift: float | None
    low: float | None
    high: float | None
    verdict: str  # ok | disagrees | too little data
    note: str = ""


class CalibrationReport(msgspec.Struct, frozen=True, kw_only=True):
    target: str
    since: dt.datetime | None
    until: dt.datetime | None
    leads: int
    converted: int
    rate: float
    low: float
    high: float
    by_grade: tuple[Bucket, ...]
    by_band: tuple[Bucket, ...]
    top: TopGrades
    by_speed: tuple[Cell, ...]
    by_pool: tuple[Cell, ...]
    rules: tuple[RuleLift, ...]
    band_width: float
    min_expected: float = MIN_EXPECTED
    skipped: int = 0  # leads of the window without a readable decision (expired, erased)


def speed_band(speed_ms: int | None) -> str:
    if speed_ms is None:
        return NOT_TOUCHED
    minutes = speed_ms / 60_000
    return next(name for name, upper in SPEED_BANDS if minutes < upper)


def _inc(table: dict[K, list[int]], key: K, y: int) -> None:
    counts = table.get(key)
    if counts is None:
        table[key] = [1, y]
    else:
        counts[0] += 1
        counts[1] += y


def _bucket(key: str, counts: list[int]) -> Bucket:
    n, k = counts
    low, high = wilson(k, n)
    return Bucket(key=key, leads=n, converted=k, rate=k / n if n else 0.0, low=low, high=high)


def _cell(grade: str, group: str, counts: list[int]) -> Cell:
    b = _bucket(group, counts)
    return Cell(grade=grade, group=group, leads=b.leads, converted=b.converted, rate=b.rate,
                low=b.low, high=b.high)


class Tally:
    """Counts of a window's leads, fed one :class:`LeadFacts` at a time."""

    def __init__(self, *, band_width: float = 20.0) -> None:
        self.band_width = band_width
        self.leads = 0
        self.converted = 0
        self.grade: dict[str, list[int]] = {}
        self.band: dict[float, list[int]] = {}
        self.speed: dict[tuple[str, str], list[int]] = {}
        self.pool: dict[tuple[str, str], list[int]] = {}
        self.rule: dict[str, list[int]] = {}  # matched, matched & converted

    def add(self, facts: LeadFacts) -> None:
        y = 1 if facts.converted else 0
        self.leads += 1
        self.converted += y
        grade = facts.grade or NO_GRADE
        _inc(self.grade, grade, y)
        _inc(self.speed, (grade, speed_band(facts.speed_ms)), y)
        _inc(self.pool, (grade, facts.pool or "(queue/owner)"), y)
        _inc(self.band, math.floor(facts.score / self.band_width) * self.band_width, y)
        for rule in facts.rules:
            _inc(self.rule, rule, y)

    def extend(self, many: Iterable[LeadFacts]) -> None:
        for facts in many:
            self.add(facts)

    def report(self, *, target: str, grades: Iterable[tuple[str, float]],
               rules: Mapping[str, tuple[str | None, float | None]],
               since: dt.datetime | None = None, until: dt.datetime | None = None,
               skipped: int = 0) -> CalibrationReport:
        """``grades``: the ruleset's (letter, threshold); ``rules``: every scoring rule id →
        (group, current points), so rules that never matched are reported too."""
        order = [g for g, _ in sorted(grades, key=lambda g: -g[1])]
        ranked = order + sorted(g for g in self.grade if g not in order)
        low, high = wilson(self.converted, self.leads)
        w = self.band_width
        return CalibrationReport(
            target=target, since=since, until=until, leads=self.leads,
            converted=self.converted, rate=self.converted / self.leads if self.leads else 0.0,
            low=low, high=high,
            by_grade=tuple(_bucket(g, self.grade[g]) for g in ranked if g in self.grade),
            by_band=tuple(_bucket(f"{b:g} to {b + w:g}", self.band[b])
                          for b in sorted(self.band, reverse=True)),
            top=self._top(order),
            by_speed=tuple(_cell(g, s, self.speed[(g, s)]) for g in ranked
                           for s in [*(n for n, _ in SPEED_BANDS), NOT_TOUCHED]
                           if (g, s) in self.speed),
            by_pool=tuple(_cell(g, p, self.pool[(g, p)]) for g in ranked
                          for p in sorted({p for gg, p in self.pool if gg == g})),
            rules=self._rules(rules), band_width=w, skipped=skipped)

    def _top(self, order: list[str]) -> TopGrades:
        top = tuple(order[:2])
        n = sum(self.grade.get(g, [0, 0])[0] for g in top)
        k = sum(self.grade.get(g, [0, 0])[1] for g in top)
        seen = [g for g in order if self.grade.get(g, [0, 0])[0] > 0]
        first, last = (seen[0], seen[-1]) if len(seen) >= 2 else (None, None)
        separation = None
        if first is not None and last is not None:
            (n1, k1), (n0, k0) = self.grade[first], self.grade[last]
            separation = (k1 / n1) / (k0 / n0) if k0 else (math.inf if k1 else None)
        share = n / self.leads if self.leads else 0.0
        recall = k / self.converted if self.converted else 0.0
        sep = "n/a" if separation is None else f"{separation:.1f}x"
        return TopGrades(
            grades=top, lead_share=share, recall=recall, precision=k / n if n else 0.0,
            top_grade=first, bottom_grade=last,
            separation=None if separation is None or math.isinf(separation) else separation,
            meets_concentration=recall >= GOAL_RECALL and share <= GOAL_LEADS,
            meets_separation=separation is not None and separation >= GOAL_SEPARATION,
            goal=(f"goal: >= {GOAL_RECALL:.0%} of conversions in <= {GOAL_LEADS:.0%} of "
                  f"leads, top grade >= {GOAL_SEPARATION:g}x the bottom; now "
                  f"{recall:.0%} of conversions in {share:.0%} of leads ("
                  f"{'/'.join(top)}), {first or '-'} vs {last or '-'} {sep}"))

    def _rules(self, rules: Mapping[str, tuple[str | None, float | None]]
               ) -> tuple[RuleLift, ...]:
        out = []
        base = self.converted / self.leads if self.leads else 0.0
        for rule in [*rules, *sorted(r for r in self.rule if r not in rules)]:
            group, points = rules.get(rule, (None, None))
            n1, a = self.rule.get(rule, [0, 0])
            n0, b = self.leads - n1, self.converted - a
            found = lift(a, n1, b, n0) if n1 and n0 else None
            verdict, note = "ok", ""
            if min(n1, n0) * base < MIN_EXPECTED:
                verdict = "too little data"
                note = (f"{min(n1, n0) * base:.1f} conversions expected on the smaller side; "
                        f"needs {MIN_EXPECTED:g}")
            elif found is not None and points:
                if points > 0 and found[2] < 1:
                    verdict, note = "disagrees", "positive points, but converts worse"
                elif points < 0 and found[1] > 1:
                    verdict, note = "disagrees", "negative points, but converts better"
            out.append(RuleLift(
                rule=rule, group=group, points=points, matched=n1, matched_converted=a,
                matched_rate=a / n1 if n1 else 0.0, unmatched=n0, unmatched_converted=b,
                unmatched_rate=b / n0 if n0 else 0.0,
                lift=None if found is None else found[0],
                low=None if found is None else found[1],
                high=None if found is None else found[2], verdict=verdict, note=note))
        return tuple(out)
