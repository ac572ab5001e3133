"""``/ui/reps``: Reps & pools — each rep's live status, open leads, today's count against the
cap and next working hours; each pool's members with eligibility now and why not, caps used
today and today's distribution as a chart (weights shown). Admins set a rep away or out of
office (until a time) here, through the same service as ``PUT /v1/reps/{id}``
(``DirectoryService.set_rep``, audited with the console session as the actor).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast
from urllib.parse import quote

from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from router.api.console._charts import bars
from router.api.console._session import Admin, Req, Session, Viewer, page
from router.services.directory import DirectoryService, RepStatus, UnknownRep
from router.services.lists import ListService
from router.services.lists_model import PoolView
from router.state.audit import Actor

__all__ = ["handlers"]

_STATUSES = ("available", "away", "out_of_office")


def _charts(pools: list[PoolView]) -> dict[str, Any]:
    weights = {p.id: {m.rep: m.weight for m in p.members} for p in pools}
    return {p.id: bars([(f"{rep} (weight {weights[p.id][rep]})", n)
                        for rep, n in p.distribution.items()],
                       label=f"leads assigned today, pool {p.id}", unit=" today")
            for p in pools}


async def _render(request: Req, session: Session, lists: ListService, *, error: str = "",
                  status_code: int = 200) -> Template:
    pools = await lists.pools()
    done = request.query_params.get("done", "")
    return page(request, session, "console/reps.html", "reps", status_code=status_code,
                reps=await lists.reps(), pools=pools, charts=_charts(pools),
                statuses=_STATUSES, error=error,
                done=done if done in lists.rules.current.reps else "")


@get("/reps", include_in_schema=False)
async def reps_page(request: Req, viewer: Viewer,
                    lists: NamedDependency[ListService]) -> Template:
    """The same data as ``GET /v1/reps`` and ``GET /v1/pools`` (ListService)."""
    return await _render(request, viewer, lists)


def _until(raw: str | None) -> dt.datetime | None:
    """A ``datetime-local`` value (UTC, as the form says) or an ISO time with its zone."""
    if not raw:
        return None
    when = dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


@post("/reps/{rep_id:str}/status", include_in_schema=False, status_code=303)
async def set_rep_status(request: Req, admin: Admin, rep_id: FromPath[str],
                         directory: NamedDependency[DirectoryService],
                         lists: NamedDependency[ListService]) -> Redirect | Template:
    """Set a rep available, away or out of office (until): admin sessions only."""
    form = await request.form()
    status = form.get("status")
    raw_until = form.get("until")
    try:
        directory.check_rep(rep_id)
    except UnknownRep as exc:
        return await _render(request, admin, lists, error=str(exc), status_code=404)
    if status not in _STATUSES:
        return await _render(request, admin, lists, status_code=422,
                             error=f"status: use one of {', '.join(_STATUSES)}")
    try:
        until = _until(raw_until if isinstance(raw_until, str) else None)
    except ValueError:
        return await _render(request, admin, lists, status_code=422,
                             error="until: give a date and time, e.g. 2026-12-01T09:00 (UTC)")
    await directory.set_rep(rep_id, cast(RepStatus, status),
                            None if status == "available" else until,
                            by=Actor("console", admin.who))
    return Redirect(f"/ui/reps?done={quote(rep_id, safe='')}#rep-{quote(rep_id, safe='')}",
                    status_code=303)


handlers = [reps_page, set_rep_status]
