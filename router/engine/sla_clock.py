"""SLA deadlines: wall-clock or counted in a rep's business hours. Pure: ``start`` is given.

A business-hours deadline counts only the owner's working intervals in the owner's own time
zone, skipping the holidays listed in the rules: 4 business hours from Friday 16:00 for a rep
working 09:00-17:00 Monday to Friday is Monday 12:00 local time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container, Iterable
from zoneinfo import ZoneInfo

from router.engine.ruleset import RepSpec, SlaSpec

__all__ = ["business_deadline", "deadline"]

_MIDNIGHT = dt.time()
_MAX_DAYS = 366  # a rep with no working hours at all: give up after a year, never loop forever


def business_deadline(rep: RepSpec, holidays: Iterable[str], start: dt.datetime,
                      seconds: int) -> dt.datetime:
    """The moment ``seconds`` of ``rep``'s working time have passed after ``start``."""
    zone = ZoneInfo(rep.timezone)
    local = start.astimezone(zone)
    key = (id(rep), id(holidays), seconds)
    hit = _GAPS.get(key)
    if hit is not None and hit[0] is rep and hit[1] is holidays and hit[2] is zone \
            and hit[3] <= local < hit[4]:
        return hit[5]
    span = _SPANS.get(key)
    if span is not None and span[0] is rep and span[1] is holidays and span[2] is zone \
            and span[3] <= local <= span[4]:
        return (local + dt.timedelta(seconds=seconds)).astimezone(dt.UTC)
    off = holidays if isinstance(holidays, frozenset | set) else set(holidays)
    due = _count(rep, off, zone, local, float(seconds))
    if due is None:
        return (start + dt.timedelta(seconds=seconds)).astimezone(dt.UTC)
    if isinstance(holidays, frozenset):  # a set may change under the memo: never kept
        gap = _gap(rep, off, zone, local)
        if gap is not None:
            if len(_GAPS) >= 1024:
                _GAPS.clear()
            _GAPS[key] = (rep, holidays, zone, gap[0], gap[1], due)
        elif (inside := _inside(rep, off, zone, local, seconds)) is not None:
            if len(_SPANS) >= 1024:
                _SPANS.clear()
            _SPANS[key] = (rep, holidays, zone, inside[0], inside[1])
    return due


# Outside working hours the deadline does not depend on when exactly the lead came in: every
# start in the same off-hours gap of the same local day (between the end of one working
# interval and the start of the next, wall clock) counts from the same next interval. The last
# such gap per (rep, holidays, duration) is kept with its deadline, so the leads of a night
# share one computation. Holding the rep and holidays objects makes a reused id() never hit.
_GAPS: dict[tuple[int, int, int], tuple[RepSpec, Iterable[str], ZoneInfo, dt.datetime,
                                        dt.datetime, dt.datetime]] = {}


# Inside working hours the deadline is the start plus the duration, as long as the duration
# fits in what is left of the working interval the lead came in: the span of such starts (wall
# clock, both ends included) is kept per (rep, holidays, duration), so the leads of a working
# day share one count too.
_SPANS: dict[tuple[int, int, int], tuple[RepSpec, Iterable[str], ZoneInfo, dt.datetime,
                                         dt.datetime]] = {}


def _count(rep: RepSpec, off: Container[str], zone: ZoneInfo, local: dt.datetime,
           remaining: float) -> dt.datetime | None:
    """Count ``remaining`` seconds of working time from ``local``; None after a year without
    enough of them."""
    day = local.date()
    for _ in range(_MAX_DAYS):
        intervals = rep.hours[day.weekday()]
        if intervals and day.isoformat() not in off:
            # Wall-clock local times; fold/gap around DST resolve the way zoneinfo does.
            midnight = dt.datetime.combine(day, _MIDNIGHT, zone)
            for begin, end in intervals:
                a = midnight + dt.timedelta(minutes=begin)
                b = midnight + dt.timedelta(minutes=end)
                a = max(a, local)
                if b <= a:
                    continue
                available = (b - a).total_seconds()
                if remaining <= available:
                    return (a + dt.timedelta(seconds=remaining)).astimezone(dt.UTC)
                remaining -= available
        day += dt.timedelta(days=1)
    return None


def _gap(rep: RepSpec, off: Container[str], zone: ZoneInfo, local: dt.datetime
         ) -> tuple[dt.datetime, dt.datetime] | None:
    """The wall-clock span [from, to) of ``local``'s day around ``local`` in which no working
    interval of that day starts or ends, or None when ``local`` is inside one. For every start
    in the span :func:`_count` skips the same intervals and starts the same ones whole."""
    day = local.date()
    midnight = dt.datetime.combine(day, _MIDNIGHT, zone)
    lo, hi = midnight, dt.datetime.combine(day + dt.timedelta(days=1), _MIDNIGHT, zone)
    if day.isoformat() not in off:
        for begin, end in rep.hours[day.weekday()]:
            a = midnight + dt.timedelta(minutes=begin)
            b = midnight + dt.timedelta(minutes=end)
            if b <= local:
                lo = max(lo, b)
            elif local < a:
                hi = min(hi, a)
            else:
                return None
    return lo, hi


def _inside(rep: RepSpec, off: Container[str], zone: ZoneInfo, local: dt.datetime,
            seconds: int) -> tuple[dt.datetime, dt.datetime] | None:
    """The wall-clock span [from, to] of starts around ``local`` for which :func:`_count` ends
    in the first interval it counts — the one holding ``local`` — so the deadline is the start
    plus ``seconds``; None unless ``local`` is such a start. Intervals are taken in the order
    the rep lists them, as :func:`_count` takes them: the earlier-listed ones must be over (or
    empty) for every start in the span."""
    day = local.date()
    if day.isoformat() in off:
        return None
    midnight = dt.datetime.combine(day, _MIDNIGHT, zone)
    floor = midnight
    for begin, end in rep.hours[day.weekday()]:
        a = midnight + dt.timedelta(minutes=begin)
        b = midnight + dt.timedelta(minutes=end)
        if b <= max(a, local):  # skipped by the count: over by now, or empty
            if a < b:
                floor = max(floor, b)
            continue
        if a <= local and (b - local).total_seconds() >= seconds:
            return max(a, floor), b - dt.timedelta(seconds=seconds)
        return None
    return None


def deadline(policy: SlaSpec, rep: RepSpec | None, holidays: Iterable[str],
             start: dt.datetime) -> dt.datetime:
    """The due time under ``policy`` for a lead owned by ``rep`` (wall clock without a rep)."""
    if policy.clock == "business" and rep is not None:
        return business_deadline(rep, holidays, start, policy.accept_within)
    return start + dt.timedelta(seconds=policy.accept_within)
