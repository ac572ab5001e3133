"""Row helpers of the list APIs (router/services/lists.py): matching a lead's index values,
the typed row, ages, a rep's next working hours."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from router.engine.ruleset import RepSpec
from router.services.lists_model import LeadRow
from router.state import lists as lx
from router.state.models import from_ms

__all__ = ["FILTERS", "age", "in_queue", "matches", "next_working_hours", "row"]

FILTERS = ("status", "territory", "segment", "grade", "owner", "pool", "queue", "sla_state")
_INDEX = {code: i for i, code in enumerate(lx.CODES.values())}
_QUEUE = _INDEX["q"]


def matches(lead: lx.IndexedLead, filters: list[tuple[str, str]]) -> bool:
    return all(lead.values[_INDEX[code]] == value for code, value in filters)


def in_queue(lead: lx.IndexedLead | None, name: str) -> bool:
    return lead is not None and lead.values[_QUEUE] == name


def age(now: dt.datetime, at: dt.datetime | None) -> float | None:
    return None if at is None else max(0.0, (now - at).total_seconds())


def row(lead: lx.IndexedLead) -> LeadRow:
    v = [x or None for x in lead.values]
    return LeadRow(lead_id=lead.id, created_at=from_ms(lead.created_ms), state=lead.state,
                   status=v[1], territory=v[2], segment=v[3], grade=v[4], owner=v[6],
                   pool=v[7], queue=v[8], sla_state=v[9],
                   due_at=from_ms(lead.due_ms) if lead.due_ms is not None else None)


def next_working_hours(rep: RepSpec, now: dt.datetime) -> dt.datetime | None:
    """The start of the rep's next working interval after ``now`` (None: no hours set)."""
    if not any(rep.hours):
        return None
    local = now.astimezone(ZoneInfo(rep.timezone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    for days in range(8):
        day = midnight + dt.timedelta(days=days)
        for start, _ in sorted(rep.hours[day.weekday()]):
            at = (day + dt.timedelta(minutes=start)).replace(tzinfo=ZoneInfo(rep.timezone))
            if at > local:
                return at.astimezone(dt.UTC)
    return None
