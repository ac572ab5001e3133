"""``/ui/sla``: the ``/v1/sla/report`` data as charts — speed to lead (median, p90),
breaches and reassignments per pool and policy over time, recycle reasons."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.response import Template
from litestar.types import ControllerRouterHandler
from markupsafe import Markup

from router.api.console._charts import PALETTE, bars, histogram, series
from router.api.console._session import Req, Viewer, page
from router.api.sla import _when
from router.services.sla import SlaCounts, SlaService, build_report
from router.services.sla_charts import TTA_EDGES, TTA_LABELS, SlaSeries, sla_series

__all__ = ["handlers"]

_PRESETS = ("24h", "7d", "30d")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _charts_of(counts: SlaCounts, s: SlaSeries) -> dict[str, Markup]:
    fmt = "%d %H:00" if s.hourly else "%b %d"
    labels = [b.strftime(fmt) for b in s.buckets]
    tta = counts.time_to_accept
    marks = {} if tta.median_seconds is None or tta.p90_seconds is None else {
        f"median {_duration(tta.median_seconds)}": tta.median_seconds,
        f"p90 {_duration(tta.p90_seconds)}": tta.p90_seconds}
    return {
        "tta": histogram(s.tta_seconds, label="Time to accept", edges=TTA_EDGES,
                                 edge_labels=TTA_LABELS, marks=marks),
        "breaches_pool": series(s.breaches_by_pool, label="Breaches per pool",
                                        x_labels=labels),
        "breaches_policy": series(s.breaches_by_policy, label="Breaches per policy",
                                          x_labels=labels),
        "reassigned_pool": series(s.reassigned_by_pool,
                                          label="Reassignments per pool", x_labels=labels),
        "reassigned_policy": series(s.reassigned_by_policy,
                                            label="Reassignments per policy", x_labels=labels),
        "recycled": bars(sorted(counts.recycled_by_reason.items(),
                                        key=lambda kv: -kv[1]),
                                 label="Recycled, by reason", color=PALETTE[3]),
        "actions": bars(sorted(counts.breach_actions.items(), key=lambda kv: -kv[1]),
                                label="What breaches did", color=PALETTE[1]),
    }


@get("/sla", include_in_schema=False)
async def sla_page(request: Req, viewer: Viewer, sla: NamedDependency[SlaService],
                   since: Annotated[str | None, QueryParameter(max_length=64)] = None,
                   until: Annotated[str | None, QueryParameter(max_length=64)] = None,
                   ) -> Template:
    now = sla.now()
    error = ""
    try:
        end = _when("until", until, now) or now
        start = _when("since", since or "7d", now) or end - dt.timedelta(days=7)
    except ProblemDetailsException as exc:  # shown on the page; the default window instead
        error = str(exc.detail)
        end, start = now, now - dt.timedelta(days=7)
    if start > end:
        error = f"since ({start:%Y-%m-%d %H:%M}) is after until ({end:%Y-%m-%d %H:%M})"
        start = end - dt.timedelta(days=7)
    facts = await sla.state.facts(start, end)
    report = build_report(facts, start, end)
    context: dict[str, Any] = {
        "report": report, "charts": _charts_of(report.total, sla_series(facts, start, end)),
        "since": since or "7d", "until": until or "", "presets": _PRESETS, "error": error,
        "median": _duration(report.total.time_to_accept.median_seconds),
        "p90": _duration(report.total.time_to_accept.p90_seconds)}
    return page(request, viewer, "console/sla.html", "sla", **context)


handlers: list[ControllerRouterHandler] = [sla_page]
