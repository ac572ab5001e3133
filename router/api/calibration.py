"""``GET /v1/scoring/calibration?since=&until=&target=&band=`` (the admin token or a ``viewer``
key): does the score rank the leads that convert first? The API twin of ``leadrouter rules
calibrate --format json`` (router/services/calibration.py; docs/outcomes.md)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from router.api.auth import admin_or_key
from router.api.errors import problem
from router.api.openapi import problems
from router.api.sla import _when
from router.services.calibration import CalibrationReport
from router.services.clock import Clock
from router.services.keys import ApiKeys
from router.services.outcome_reader import CalibrationService, TargetError
from router.services.rules import RulesManager
from router.settings import Settings

__all__ = ["handlers"]

DEFAULT_WINDOW = dt.timedelta(days=90)


@get("/v1/scoring/calibration", tags=["scoring"], responses=problems(422))
async def scoring_calibration(
        request: Request[Any, Any, Any], calibration: NamedDependency[CalibrationService],
        rules: NamedDependency[RulesManager], clock: NamedDependency[Clock],
        settings: NamedDependency[Settings], keys: NamedDependency[ApiKeys],
        since: Annotated[str | None, QueryParameter(max_length=64)] = None,
        until: Annotated[str | None, QueryParameter(max_length=64)] = None,
        target: Annotated[str | None, QueryParameter(max_length=40)] = None,
        band: Annotated[float, QueryParameter(ge=1, le=1000)] = 20.0) -> CalibrationReport:
    """Conversion to ``target`` (default: the funnel's ``converted`` stage) of the leads that
    arrived in the window (``since``/``until``: ISO 8601 times or durations before now such as
    ``30d``; default the last 90 days): by grade and by score band (width ``band``) with 95%
    Wilson intervals, the top grades' share of leads and of conversions, grade x
    speed-to-lead and grade x pool, and per scoring rule the lift with its interval and a
    verdict (``ok``, ``disagrees``, ``too little data``). Reads the window page by page."""
    await admin_or_key(request, settings, keys, scope="viewer")
    now = clock()
    now = now if now.tzinfo else now.replace(tzinfo=dt.UTC)
    end = _when("until", until, now) or now
    start = _when("since", since, now) or end - DEFAULT_WINDOW
    if start > end:
        raise problem(422, "Invalid time range", f"since ({start.isoformat()}) is after until "
                      f"({end.isoformat()}) — swap them or widen the window",
                      kind="validation")
    try:
        return await calibration.report(rules.current, since=start, until=end,
                                        target=target or None, band_width=band)
    except TargetError as exc:
        raise problem(422, "Unknown target", str(exc), kind="validation",
                      errors=[{"path": "target", "message": "not a stage"}]) from None


handlers = [scoring_calibration]
