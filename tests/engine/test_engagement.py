"""router/engine/engagement.py and the ``engagement:`` rule section: loading and its errors
(file, line and fix), the pure decay and window math (exact values), the lines an explanation
shows, rule cases. The state kept in Valkey by the Lua scripts: tests/state/test_engagement.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from leadrouter_sdk import Lead

from router.engine import engagement as eng
from router.engine.engagement import DAY_MS, Activity, TypeActivity
from router.engine.errors import RulesetError
from router.engine.evaluate import Snapshot, evaluate, explain
from router.engine.loader import load_texts

T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)
NOW = eng.ms(T0)
H = 14 * DAY_MS

RULES = """\
scoring:
  fit:
    - {id: fit.any, when: "true", points: 1}
  engagement:
    - {id: eng.pricing, when: 'count("pricing", days=7) >= 2', points: 5}
engagement:
  half_life: 14d
  events:
    demo: {points: 30}
    webinar: {points: 10, cap: 25}
    unsubscribed: {points: -20, cap: 15}
qualification:
  - {status: mql, when: "engagement >= 30"}
  - {status: nurture, when: "true"}
"""


def ruleset(text: str = RULES) -> Any:
    return load_texts({"scoring.yaml": text})


# --- the rule section ---------------------------------------------------------------------------


def test_section_loads_and_lists_every_event_type_the_rules_read() -> None:
    rs = ruleset()
    assert rs.engagement.half_life_ms == H
    assert rs.engagement.events["webinar"].cap == 25.0
    assert rs.engagement.events["demo"].line == 9
    assert rs.engagement_events == ("demo", "pricing", "unsubscribed", "webinar")


@pytest.mark.parametrize(("section", "expected"), [
    ("  half_life: soon\n  events: {demo: 5}",
     "scoring.yaml:7:14: engagement: 'soon' is not a duration — write e.g. 14d, 36h or 7d12h"),
    ("  half_life: 14d\n  events: {demo: {points: 5, cap: 0}}",
     "scoring.yaml:8:35: demo: Expected `int` >= 1"),
    ("  half_life: 14d\n  events:\n    demo: {pionts: 5}",
     "scoring.yaml:9:11: demo: unknown key `pionts` — did you mean `points`?"),
    ("  half_life: 14d\n  events:\n    demo: 0",
     "scoring.yaml:9:11: demo: points must be a non-zero number"),
    ("  halflife: 14d",
     "scoring.yaml:6:1: engagement: unknown key `halflife` — did you mean `half_life`?"),
])
def test_section_errors_name_file_line_and_fix(section: str, expected: str) -> None:
    head = RULES.split("engagement:\n  half_life", maxsplit=1)[0]
    tail = RULES.split("qualification:", maxsplit=1)[1]
    text = f"{head}engagement:\n{section}\nqualification:{tail}"
    with pytest.raises(RulesetError) as err:
        ruleset(text)
    assert expected in str(err.value), str(err.value)


# --- pure math ----------------------------------------------------------------------------------


def test_decay_is_exact_and_memoryless() -> None:
    a = TypeActivity(n=3, times=(NOW - 28 * DAY_MS, NOW - 14 * DAY_MS, NOW))
    assert eng.decay(a, NOW, H) == 0.25 + 0.5 + 1.0
    # Folding the two older events into the remainder changes nothing, at any later time.
    folded = TypeActivity(n=3, rem=0.25 * 2 + 1.0, rem_at=NOW - 14 * DAY_MS, times=(NOW,))
    for later in (0, 1, 3 * DAY_MS + 17, 400 * DAY_MS):
        assert eng.decay(folded, NOW + later, H) == pytest.approx(
            eng.decay(a, NOW + later, H), rel=1e-12)
    # A time later than now (another worker's clock) counts as fresh, never more.
    assert eng.decay(TypeActivity(n=1, times=(NOW + 5,)), NOW, H) == 1.0


def test_lines_show_count_raw_decayed_and_cap() -> None:
    rs = ruleset()
    act = eng.activity_from_times({"webinar": [NOW] * 4, "demo": [NOW - 7 * DAY_MS],
                                   "unsubscribed": [NOW]}, NOW)
    lines = {x.event: x for x in eng.lines(rs.engagement, act, T0)}
    assert (lines["webinar"].raw, lines["webinar"].decayed, lines["webinar"].final,
            lines["webinar"].capped) == (40.0, 40.0, 25.0, True)
    assert lines["demo"].final == round(30 * 2 ** -0.5, 4) and not lines["demo"].capped
    assert lines["unsubscribed"].final == -15.0 and lines["unsubscribed"].capped
    ev = evaluate(rs, Lead(email="a@b.example"), Snapshot(activity=act), now=T0)
    assert ev.score.engagement == 25.0 + round(30 * 2 ** -0.5, 4) - 15.0
    assert ev.status == "mql"
    steps = [s for s in explain(rs, ev) if s.stage == "engagement"]
    assert [s.rule for s in steps] == ["engagement:demo", "engagement:webinar",
                                       "engagement:unsubscribed"]
    assert steps[1].detail == "4 x 10 = 40 raw, 40 after decay (half-life 14d); cap 25 applied"


def test_windows_at_the_edges() -> None:
    act = Activity(types={"p": TypeActivity(n=3, times=(NOW - 7 * DAY_MS,
                                                        NOW - 7 * DAY_MS + 1, NOW))})
    counts, last = eng.windows(act, {("p", 7), ("p", 1), ("q", 7)}, {"p", "q"}, T0)
    assert counts == {("p", 7): 2, ("p", 1): 1, ("q", 7): 0}
    assert last == {"p": T0}


def test_rule_cases_get_the_decaying_points_too() -> None:
    from router.engine.cases import CaseState, PastEvent, snapshot_for

    rs = ruleset()
    snap = snapshot_for(CaseState(events=[PastEvent(event="demo", days_ago=14)]),
                        rs.windows, T0)
    ev = evaluate(rs, Lead(email="a@b.example"), snap, now=T0)
    assert ev.score.engagement == 15.0


def _windows_by_walk(activity: Activity, wanted: Any, last_events: Any, now: dt.datetime
                     ) -> tuple[dict[tuple[str, int], int], dict[str, dt.datetime]]:
    """The reference: every wanted window, counted from the newest time back (the walk
    ``windows()`` did before it went by the person's own event types)."""
    now_ms = eng.ms(now)
    counts = {}
    for event, days in wanted:
        a = activity.types.get(event)
        times = a.times if a is not None else ()
        counts[(event, days)] = sum(1 for t in times if t > now_ms - days * DAY_MS)
    last = {e: eng.from_ms(a.last) for e in last_events
            if (a := activity.types.get(e)) is not None and a.last is not None}
    return counts, last


_EVENTS = st.sampled_from(["p", "q", "r", "s"])
# Times relative to now, window edges (whole days back, ±1 ms) among them.
_TIMES = st.integers(-40 * DAY_MS, DAY_MS) | st.builds(
    lambda d, off: -d * DAY_MS + off, st.integers(0, 45), st.sampled_from([-1, 0, 1]))


@settings(max_examples=300, deadline=None)
@given(types=st.dictionaries(_EVENTS, st.tuples(
           st.integers(0, 5), st.lists(_TIMES, max_size=8))),
       wanted=st.frozensets(st.tuples(_EVENTS, st.integers(1, 45)), max_size=8),
       last_events=st.frozensets(_EVENTS), as_set=st.booleans())
def test_windows_by_event_type_count_what_the_walk_over_every_window_counts(
        types: dict[str, tuple[int, list[int]]], wanted: frozenset[tuple[str, int]],
        last_events: frozenset[str], as_set: bool) -> None:
    now_ms = eng.ms(T0)
    activity = Activity(types={e: TypeActivity(n=n + len(ts), rem=1.0 if n else 0.0,
                                               rem_at=now_ms - 50 * DAY_MS if n else 0,
                                               times=tuple(sorted(now_ms + t for t in ts)))
                               for e, (n, ts) in types.items()})
    given_wanted = set(wanted) if as_set else wanted  # a plain set is not memoised
    counts, last = eng.windows(activity, given_wanted, last_events, T0)
    want_counts, want_last = _windows_by_walk(activity, wanted, last_events, T0)
    assert counts == want_counts and list(counts) == list(given_wanted)
    assert last == want_last and all(v.tzinfo is dt.UTC for v in last.values())
