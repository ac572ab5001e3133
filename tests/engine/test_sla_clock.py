"""Business-hours deadlines: the off-hours and in-hours memos of ``business_deadline`` give
exactly what counting from scratch gives, for every start — across DST changes, holidays,
overlapping or empty working intervals and starts that walk in and out of working hours."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from router.engine import sla_clock
from router.engine.ruleset import RepSpec
from router.engine.sla_clock import business_deadline


def reference(rep: RepSpec, holidays: Iterable[str], start: dt.datetime,
              seconds: int) -> dt.datetime:
    """The counting loop as it was before the memo (the specification)."""
    zone = ZoneInfo(rep.timezone)
    local = start.astimezone(zone)
    off = holidays if isinstance(holidays, frozenset | set) else set(holidays)
    remaining = float(seconds)
    day = local.date()
    for _ in range(366):
        if day.isoformat() not in off:
            for begin, end in rep.hours[day.weekday()]:
                a = dt.datetime.combine(day, dt.time(), zone) + dt.timedelta(minutes=begin)
                b = dt.datetime.combine(day, dt.time(), zone) + dt.timedelta(minutes=end)
                a = max(a, local)
                if b <= a:
                    continue
                available = (b - a).total_seconds()
                if remaining <= available:
                    return (a + dt.timedelta(seconds=remaining)).astimezone(dt.UTC)
                remaining -= available
        day += dt.timedelta(days=1)
    return (start + dt.timedelta(seconds=seconds)).astimezone(dt.UTC)


ZONES = ["Europe/London", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham",
         "Asia/Kolkata", "UTC", "America/Sao_Paulo", "Europe/Berlin"]
# Around DST changes (both hemispheres) and an ordinary week.
BASES = [dt.datetime(2026, 3, 28, 18, tzinfo=dt.UTC), dt.datetime(2026, 10, 24, 18, tzinfo=dt.UTC),
         dt.datetime(2026, 4, 4, 10, tzinfo=dt.UTC), dt.datetime(2026, 3, 7, 20, tzinfo=dt.UTC),
         dt.datetime(2026, 10, 31, 20, tzinfo=dt.UTC), dt.datetime(2026, 11, 20, 15, tzinfo=dt.UTC)]


def _day(rng: random.Random) -> tuple[tuple[int, int], ...]:
    kind = rng.random()
    if kind < 0.2:
        return ()
    if kind < 0.3:  # odd ones: empty, overlapping, whole day, unsorted
        return tuple((rng.randrange(0, 1441), rng.randrange(0, 1441))
                     for _ in range(rng.randrange(1, 4)))
    out, t = [], rng.randrange(0, 600)
    for _ in range(rng.randrange(1, 3)):
        end = min(1440, t + rng.randrange(30, 600))
        out.append((t, end))
        t = end + rng.randrange(0, 120)
        if t >= 1440:
            break
    return tuple(out)


def _rep(rng: random.Random, i: int) -> RepSpec:
    return RepSpec(id=f"r{i}", name=None, timezone=rng.choice(ZONES),
                   hours=tuple(_day(rng) for _ in range(7)),  # type: ignore[arg-type]
                   weight=1, daily_cap=None)


@pytest.mark.parametrize("seed", range(12))
def test_memo_matches_counting_from_scratch(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    sla_clock._GAPS.clear()
    sla_clock._SPANS.clear()
    counted = 0
    count = sla_clock._count

    def counting(*args: Any) -> Any:
        nonlocal counted
        counted += 1
        return count(*args)

    monkeypatch.setattr(sla_clock, "_count", counting)
    calls = 0
    reps = [_rep(rng, i) for i in range(6)]
    base = rng.choice(BASES)
    holidays = frozenset((base + dt.timedelta(days=d)).date().isoformat()
                         for d in range(-1, 4) if rng.random() < 0.3)
    for rep in reps:
        for seconds in (rng.choice((60, 1800, 4 * 3600, 8 * 3600, 3 * 86400)),):
            start = base + dt.timedelta(seconds=rng.randrange(0, 86400))
            for _ in range(150):
                start += dt.timedelta(seconds=rng.choice((0, 1, 59, 600, 1799, 3600, 7200)),
                                      microseconds=rng.randrange(0, 1000) * 1000)
                got = business_deadline(rep, holidays, start, seconds)
                calls += 1
                assert got == reference(rep, holidays, start, seconds), (rep, start, seconds)
                assert got.tzinfo is dt.UTC
    assert counted < calls * 0.9  # the memo answered some of them


def test_no_memo_for_mutable_holidays() -> None:
    sla_clock._GAPS.clear()
    sla_clock._SPANS.clear()
    rep = RepSpec(id="x", name=None, timezone="Europe/London",
                  hours=(((540, 1020),),) * 7, weight=1, daily_cap=None)
    holidays: set[str] = set()
    start = dt.datetime(2026, 11, 24, 22, tzinfo=dt.UTC)
    first = business_deadline(rep, holidays, start, 3600)
    holidays.add("2026-11-25")
    assert business_deadline(rep, holidays, start, 3600) == \
        reference(rep, holidays, start, 3600) != first
    assert not sla_clock._GAPS
    assert not sla_clock._SPANS


def test_starts_inside_working_hours_share_one_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rep working 09:00-17:00: with a 1-hour SLA every start from 09:00 to 16:00 is due an
    hour later, counted once; from 16:00:01 on the hour spills into the next morning, and
    those starts share one count as well (until 17:00)."""
    sla_clock._GAPS.clear()
    sla_clock._SPANS.clear()
    counted: list[dt.datetime] = []
    count = sla_clock._count
    monkeypatch.setattr(sla_clock, "_count", lambda *a: counted.append(a[3]) or count(*a))
    rep = RepSpec(id="x", name=None, timezone="Europe/Berlin",
                  hours=(((540, 1020),),) * 7, weight=1, daily_cap=None)
    holidays: frozenset[str] = frozenset()
    day = dt.datetime(2026, 11, 24, 8, tzinfo=dt.UTC)  # 09:00 in Berlin
    for minutes, ms in ((0, 0), (30, 1), (59, 999), (360, 1), (420, 0)):  # 420: 16:00 sharp
        start = day + dt.timedelta(minutes=minutes, milliseconds=ms)
        assert business_deadline(rep, holidays, start, 3600) == start + dt.timedelta(hours=1) \
            == reference(rep, holidays, start, 3600)
    assert len(counted) == 1
    for seconds, due in ((1, "2026-11-25T08:00:01"), (1800, "2026-11-25T08:30:00"),
                         (3599, "2026-11-25T08:59:59")):
        start = day + dt.timedelta(minutes=420, seconds=seconds)
        assert business_deadline(rep, holidays, start, 3600) == \
            dt.datetime.fromisoformat(due + "+00:00") == reference(rep, holidays, start, 3600)
    assert len(counted) == 2
    end = day + dt.timedelta(hours=8)  # 17:00: off hours, the next morning's first hour
    assert business_deadline(rep, holidays, end, 3600) == reference(rep, holidays, end, 3600)
    assert len(counted) == 3
