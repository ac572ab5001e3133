"""``GET /v1/sla/report?since=…&until=…``: the handoff SLA, per policy and per pool."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from litestar import get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from router.api.errors import problem
from router.api.openapi import problems
from router.engine.schema import parse_duration
from router.services.sla import SlaReport, SlaService

__all__ = ["handlers"]

_DEFAULT_WINDOW = dt.timedelta(days=7)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _when(name: str, value: str | None, now: dt.datetime) -> dt.datetime | None:
    """An ISO 8601 time (with a zone; a bare date is midnight UTC) or a duration before now
    (``24h``, ``7d``)."""
    if value is None or value == "":
        return None
    try:
        return max(_EPOCH, now - dt.timedelta(seconds=parse_duration(value)))
    except ValueError:
        pass
    except OverflowError:
        return _EPOCH
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise problem(422, "Invalid time range", f"{name}={value!r}: give an ISO 8601 time "
                      "such as 2026-03-02T09:00:00Z or 2026-03-02, or a duration before now "
                      "such as 24h or 7d", kind="validation",
                      errors=[{"path": name, "message": "not a time"}]) from None
    if when.tzinfo is None:
        if len(value) == 10:  # a date
            return max(_EPOCH, when.replace(tzinfo=dt.UTC))
        raise problem(422, "Invalid time range", f"{name}={value!r}: add a time zone, e.g. "
                      f"{value}Z", kind="validation",
                      errors=[{"path": name, "message": "time zone required"}])
    try:
        return max(_EPOCH, when.astimezone(dt.UTC))
    except OverflowError:  # year 1 east of UTC: before anything we keep
        return _EPOCH


@get("/v1/sla/report", tags=["sla"], responses=problems(422))
async def sla_report(sla: NamedDependency[SlaService],
                     since: Annotated[str | None, QueryParameter(max_length=64)] = None,
                     until: Annotated[str | None, QueryParameter(max_length=64)] = None,
                     ) -> SlaReport:
    """Handoffs, accepts in time and late, breaches (and what the escalation did),
    reassignments, recycles by reason and time to accept (median, p90), in total, per SLA
    policy and per pool (``queue:NAME`` for queued leads, ``(direct)`` for owner routes).

    ``since`` / ``until``: ISO 8601 times or durations before now (``24h``); the default is the
    last 7 days. Facts are kept for the decision retention, up to ``sla_facts_maxlen``."""
    now = sla.now()
    end = _when("until", until, now) or now
    start = _when("since", since, now) or max(_EPOCH, end - _DEFAULT_WINDOW)
    if start > end:
        raise problem(422, "Invalid time range", f"since ({start.isoformat()}) is after until "
                      f"({end.isoformat()})", kind="validation")
    return await sla.report(start, end)


handlers = [sla_report]
