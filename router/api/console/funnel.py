"""``/ui/funnel`` (the ``GET /v1/funnel`` data: leads reaching each stage as bars, per group,
and the time between stages) and ``/ui/calibration`` (the ``GET /v1/scoring/calibration``
report: conversion by grade and score band with their 95% intervals, each scoring rule's lift
with its interval). Server-rendered SVG (``_charts.py`` bars, and the interval chart here);
a bad window is shown on the page and the default window used instead."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any

from litestar import get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.response import Template
from litestar.types import ControllerRouterHandler
from markupsafe import Markup, escape

from router.api.console._charts import PALETTE, bars, nice_max
from router.api.console._session import Req, Viewer, page
from router.api.sla import _when
from router.services.clock import Clock
from router.services.funnel import FunnelService
from router.services.outcome_reader import CalibrationService, TargetError
from router.services.rules import RulesManager
from router.state.funnel import FUNNEL_DIMS

__all__ = ["handlers", "intervals"]

_PRESETS = ("7d", "30d", "90d", "180d")


def _window(since: str | None, until: str | None, now: dt.datetime, default: str
            ) -> tuple[dt.datetime, dt.datetime, str]:
    """(start, end, error shown on the page; then the default window)."""
    first = _when("since", default, now) or now
    try:
        end = _when("until", until, now) or now
        start = _when("since", since or default, now) or first
    except ProblemDetailsException as exc:
        return first, now, str(exc.detail)
    if start > end:
        return first, now, f"since ({start:%Y-%m-%d %H:%M}) is after until ({end:%Y-%m-%d %H:%M})"
    return start, end, ""


def _pct(x: float) -> str:
    return f"{x:.1%}"


def intervals(items: Sequence[tuple[str, float, float, float]], *, label: str,
              reference: float | None = None, percent: bool = True,
              width: int = 560) -> Markup:
    """A dot per ``(name, value, low, high)`` with a line over its interval; ``reference``:
    a dashed vertical line (a lift of 1)."""
    if not items:
        return bars([], label=label)
    name_w = min(240, 12 + 7 * max(len(n) for n, *_ in items))
    row, top = 22, 6
    plot = width - name_w - 90
    unit = 100 if percent else 1
    scale = nice_max(max([h for *_, h in items] + [reference or 0.0]) * unit) / unit
    height = top + row * len(items) + 6

    def x(v: float) -> float:
        return name_w + (plot * min(v, scale) / scale if scale else 0)

    def fmt(v: float) -> str:
        return _pct(v) if percent else f"{v:.2f}"

    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(label)}">']
    if reference is not None:
        parts.append(f'<line x1="{x(reference):.1f}" x2="{x(reference):.1f}" y1="0" '
                     f'y2="{height}" stroke="#5c6778" stroke-dasharray="3 3"/>')
    for i, (name, value, low, high) in enumerate(items):
        y = top + i * row + 11
        tip = f"{escape(name)}: {fmt(value)} (95% {fmt(low)}-{fmt(high)})"
        parts.append(f'<text x="{name_w - 6}" y="{y + 4}" text-anchor="end">'
                     f"{escape(name)}</text>")
        parts.append(f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{y}" y2="{y}" '
                     f'stroke="{PALETTE[0]}" stroke-width="2"><title>{tip}</title>'
                     "</line>")
        parts.append(f'<circle cx="{x(value):.1f}" cy="{y}" r="4" fill="{PALETTE[0]}">'
                     f"<title>{tip}</title></circle>")
        parts.append(f'<text x="{x(high) + 6:.1f}" y="{y + 4}">{fmt(value)}</text>')
    parts.append("</svg>")
    # Safe: every text from outside went through escape() above.
    return Markup("".join(parts))  # noqa: S704


@get("/funnel", include_in_schema=False)
async def funnel_page(request: Req, viewer: Viewer, funnel: NamedDependency[FunnelService],
                      since: Annotated[str | None, QueryParameter(max_length=64)] = None,
                      until: Annotated[str | None, QueryParameter(max_length=64)] = None,
                      by: Annotated[str, QueryParameter(max_length=40)] = "segment",
                      ) -> Template:
    now = funnel.now().astimezone(dt.UTC)
    start, end, error = _window(since, until, now, "30d")
    if by not in FUNNEL_DIMS:
        error, by = f"by={by!r} is not a dimension — use one of: {', '.join(FUNNEL_DIMS)}", \
            "segment"
    try:
        report = await funnel.report(start.date(), end.date(), by)
    except ValueError as exc:
        error = str(exc)
        report = await funnel.report((now - dt.timedelta(days=29)).date(), now.date(), by)
    total = report.total
    stages = [("routed", float(total.routed)),
              *((s, float(total.reached.get(s, 0))) for s in report.stages)]
    converted = sorted(((g.group, float(g.reached.get(report.converted, 0)))
                        for g in report.groups), key=lambda kv: -kv[1])
    context: dict[str, Any] = {
        "report": report, "since": since or "30d", "until": until or "", "by": by,
        "dims": FUNNEL_DIMS, "presets": _PRESETS, "error": error,
        "stages_chart": bars(stages, label="Leads reaching each stage"),
        "groups_chart": bars(converted, label=f"Reached {report.converted}, by {by}",
                                     color=PALETTE[2])}
    return page(request, viewer, "console/funnel.html", "funnel", **context)


@get("/calibration", include_in_schema=False)
async def calibration_page(request: Req, viewer: Viewer,
                           calibration: NamedDependency[CalibrationService],
                           rules: NamedDependency[RulesManager], clock: NamedDependency[Clock],
                           since: Annotated[str | None, QueryParameter(max_length=64)] = None,
                           until: Annotated[str | None, QueryParameter(max_length=64)] = None,
                           target: Annotated[str | None, QueryParameter(max_length=40)] = None,
                           ) -> Template:
    now = clock()
    now = now.astimezone(dt.UTC) if now.tzinfo else now.replace(tzinfo=dt.UTC)
    start, end, error = _window(since, until, now, "90d")
    ruleset = rules.current
    try:
        report = await calibration.report(ruleset, since=start, until=end, target=target or None)
    except TargetError as exc:
        error = str(exc)
        report = await calibration.report(ruleset, since=start, until=end)
    judged = [r for r in report.rules if r.lift is not None and r.low is not None
              and r.high is not None and r.verdict != "too little data"]
    context: dict[str, Any] = {
        "report": report, "since": since or "90d", "until": until or "",
        "target": report.target, "targets": ruleset.funnel.chain, "presets": _PRESETS,
        "error": error,
        "grade_chart": intervals([(b.key, b.rate, b.low, b.high) for b in report.by_grade],
                                 label="Conversion by grade (95% interval)"),
        "band_chart": intervals([(b.key, b.rate, b.low, b.high) for b in report.by_band],
                                label="Conversion by score band (95% interval)"),
        "lift_chart": intervals([(r.rule, r.lift or 0.0, r.low or 0.0, r.high or 0.0)
                                 for r in judged], label="Lift per rule (95% interval)",
                                reference=1.0, percent=False)}
    return page(request, viewer, "console/calibration.html", "calibration", **context)


handlers: list[ControllerRouterHandler] = [funnel_page, calibration_page]
