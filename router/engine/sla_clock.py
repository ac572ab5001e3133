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
        return (span[5] + (local - span[3])).astimezone(dt.UTC)
    off = holidays if isinstance(holidays, frozenset | set) else set(holidays)
    counted = _count(rep, off, zone, local, float(seconds))
    if counted is None:
        return (start + dt.timedelta(seconds=seconds)).astimezone(dt.UTC)
    due, landing, landing_end = counted
    if isinstance(holidays, frozenset):  # a set may change under the memo: never kept
        gap = _gap(rep, off, zone, local)
        if gap is not None:
            if len(_GAPS) >= 1024:
                _GAPS.clear()
            _GAPS[key] = (rep, holidays, zone, gap[0], gap[1], due)
        elif (end := _steady_until(rep, zone, local)) is not None:
            # Later starts (wall clock) move the deadline by as much, while the start stays in
            # its interval and the deadline in the one it landed in.
            last = min(end - _TICK, local + (landing_end - landing))
            if len(_SPANS) >= 1024:
                _SPANS.clear()
            _SPANS[key] = (rep, holidays, zone, local, last, landing)
    return due


_TICK = dt.timedelta(microseconds=1)

# Outside working hours the deadline does not depend on when exactly the lead came in: every
# start in the same off-hours gap of the same local day (between the end of one working
# interval and the start of the next, wall clock) counts from the same next interval. The last
# such gap per (rep, holidays, duration) is kept with its deadline, so the leads of a night
# share one computation. Holding the rep and holidays objects makes a reused id() never hit.
_GAPS: dict[tuple[int, int, int], tuple[RepSpec, Iterable[str], ZoneInfo, dt.datetime,
                                        dt.datetime, dt.datetime]] = {}

# Inside working hours the deadline moves with the start: a start d later (wall clock) is due d
# later, as long as the start stays in its working interval and the deadline in the interval
# it landed in. Kept per (rep, holidays, duration): the first start counted, the last start
# the memo answers, and the first start's deadline (wall clock), so a working day's leads share
# a few counts.
_SPANS: dict[tuple[int, int, int], tuple[RepSpec, Iterable[str], ZoneInfo, dt.datetime,
                                         dt.datetime, dt.datetime]] = {}


def _count(rep: RepSpec, off: Container[str], zone: ZoneInfo, local: dt.datetime,
           remaining: float) -> tuple[dt.datetime, dt.datetime, dt.datetime] | None:
    """Count ``remaining`` seconds of working time from ``local``: the deadline (UTC), the same
    moment in wall-clock time and the end of the working interval it falls in; None after a
    year without enough working time."""
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
                    landing = a + dt.timedelta(seconds=remaining)
                    return landing.astimezone(dt.UTC), landing, b
                remaining -= available
        day += dt.timedelta(days=1)
    return None


def _steady_until(rep: RepSpec, zone: ZoneInfo, local: dt.datetime) -> dt.datetime | None:
    """The end of the working interval ``local`` is in, when :func:`_count` would count that
    interval first and every other one of the day whole or not at all, for ``local`` and any
    later start before that end; else None. (Intervals are taken in the order the rep lists
    them, as the count takes them: odd lists with overlaps get no memo.) The day is no holiday:
    :func:`_gap` answered first."""
    day = local.date()
    midnight = dt.datetime.combine(day, _MIDNIGHT, zone)
    current: dt.datetime | None = None
    for begin, end in rep.hours[day.weekday()]:
        a = midnight + dt.timedelta(minutes=begin)
        b = midnight + dt.timedelta(minutes=end)
        if b <= a or b <= local:  # empty, or over: skipped by every later start too
            continue
        if current is None and a <= local:
            current = b  # the first interval counted holds the start
        elif current is None or a < current:
            return None  # counted before it, or overlapping it: depends on the start
    return current


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


def deadline(policy: SlaSpec, rep: RepSpec | None, holidays: Iterable[str],
             start: dt.datetime) -> dt.datetime:
    """The due time under ``policy`` for a lead owned by ``rep`` (wall clock without a rep)."""
    if policy.clock == "business" and rep is not None:
        return business_deadline(rep, holidays, start, policy.accept_within)
    return start + dt.timedelta(seconds=policy.accept_within)
