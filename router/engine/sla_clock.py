"""SLA deadlines: wall-clock or counted in a rep's business hours. Pure: ``start`` is given.

A business-hours deadline counts only the owner's working intervals in the owner's own time
zone, skipping the holidays listed in the rules: 4 business hours from Friday 16:00 for a rep
working 09:00-17:00 Monday to Friday is Monday 12:00 local time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from router.engine.ruleset import RepSpec, SlaSpec

__all__ = ["business_deadline", "deadline"]

_MAX_DAYS = 366  # a rep with no working hours at all: give up after a year, never loop forever


def business_deadline(rep: RepSpec, holidays: Iterable[str], start: dt.datetime,
                      seconds: int) -> dt.datetime:
    """The moment ``seconds`` of ``rep``'s working time have passed after ``start``."""
    zone = ZoneInfo(rep.timezone)
    local = start.astimezone(zone)
    off = holidays if isinstance(holidays, frozenset | set) else set(holidays)
    remaining = float(seconds)
    day = local.date()
    for _ in range(_MAX_DAYS):
        if day.isoformat() not in off:
            for begin, end in rep.hours[day.weekday()]:
                # Wall-clock local times; fold/gap around DST resolve the way zoneinfo does.
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


def deadline(policy: SlaSpec, rep: RepSpec | None, holidays: Iterable[str],
             start: dt.datetime) -> dt.datetime:
    """The due time under ``policy`` for a lead owned by ``rep`` (wall clock without a rep)."""
    if policy.clock == "business" and rep is not None:
        return business_deadline(rep, holidays, start, policy.accept_within)
    return start + dt.timedelta(seconds=policy.accept_within)
