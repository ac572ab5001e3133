"""Outcomes in and the funnel out (docs/api: README "Outcomes and the funnel").

* ``POST /v1/leads/{lead_id}/outcome`` — ``{"stage", "at", "amount", "currency", "reason",
  "outcome_id"}``: 201 when it recorded a new stage, 200 for a repeat (the stage was known:
  its first time stays) or a duplicate ``outcome_id`` (nothing changed).
* ``POST /v1/outcomes`` — the same with ``external_id`` (+ ``source``) or ``email`` instead of
  our id, for CRMs that do not keep it.
* ``GET /v1/funnel?since=&until=&by=`` — per group: routed, reached per stage, conversion,
  velocity, won amount, sales velocity (router/services/funnel.py).

Who may post: while an admin token or any API key is configured, the admin token or a key
with the ``outcomes`` scope (``admin`` keys too); open otherwise, like the owner actions. The
funnel (counts per group, no personal data) is readable like the SLA report.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from router.api._body import decode_json, require_json
from router.api.auth import authorize
from router.api.errors import problem
from router.api.openapi import json_body, problems
from router.engine.schema import parse_duration
from router.services.funnel import FunnelReport, FunnelService
from router.services.keys import ApiKeys
from router.services.outcomes import OutcomeError, OutcomeIn, OutcomeReply, OutcomeService
from router.settings import Settings

__all__ = ["handlers"]

LeadId = Annotated[str, PathParameter(max_length=64)]
_HINT = 'send e.g. {"stage": "won", "amount": "12000.00", "currency": "EUR"}'
_WINDOW = dt.timedelta(days=30)


async def _authorize(request: Request[Any, Any, Any], settings: Settings,
                     keys: ApiKeys) -> None:
    if settings.admin_token or settings.require_api_key or await keys.configured():
        await authorize(request, settings, keys, "outcomes")


def _problem(exc: OutcomeError) -> Exception:
    path = f"$.{exc.field}" if exc.field and exc.field != "lead_id" else "lead_id"
    return problem(exc.status, exc.title, exc.detail, kind=exc.kind,
                   errors=[{"path": path, "message": exc.detail}])


async def _record(request: Request[Any, Any, Any], lead_id: str | None,
                  outcomes: OutcomeService, settings: Settings,
                  keys: ApiKeys) -> Response[OutcomeReply]:
    await _authorize(request, settings, keys)
    require_json(request.headers, hint=_HINT)
    body = decode_json(await request.body(), OutcomeIn, title="Invalid outcome", hint=_HINT)
    if lead_id is not None and (body.external_id or body.email or body.lead_id):
        raise problem(422, "Invalid outcome", "this route names the lead in its path — leave "
                      "out external_id / email / lead_id, or post to /v1/outcomes",
                      kind="validation", errors=[{"path": "$", "message": "lead named twice"}])
    try:
        reply, new = await outcomes.record(lead_id, body)
    except OutcomeError as exc:
        raise _problem(exc) from None
    return Response(reply, status_code=201 if new else 200)


@post("/v1/leads/{lead_id:str}/outcome", tags=["outcomes"], status_code=201,
      responses=problems(415, 503),
      operation_class=json_body(OutcomeIn, "The stage reached, when, the amount and currency, "
                                "the reason, the sender's outcome id."))
async def post_lead_outcome(request: Request[Any, Any, Any], lead_id: LeadId,
                            outcomes: NamedDependency[OutcomeService],
                            settings: NamedDependency[Settings],
                            keys: NamedDependency[ApiKeys]) -> Response[OutcomeReply]:
    """Record what happened to a lead after routing (a stage of rules/funnel.yaml). 201: a new
    stage; 200: the stage was known (its first time stays) or the outcome_id was seen."""
    return await _record(request, lead_id, outcomes, settings, keys)


@post("/v1/outcomes", tags=["outcomes"], status_code=201, responses=problems(415, 503),
      operation_class=json_body(OutcomeIn, "An outcome naming its lead by external_id "
                                "(+ source) or email."))
async def post_outcome(request: Request[Any, Any, Any],
                       outcomes: NamedDependency[OutcomeService],
                       settings: NamedDependency[Settings],
                       keys: NamedDependency[ApiKeys]) -> Response[OutcomeReply]:
    """An outcome for the lead with this ``external_id`` (``source``: the channel or lead
    source it came in with) or ``email`` (the most recently routed lead of that person)."""
    return await _record(request, None, outcomes, settings, keys)


def _day(name: str, value: str | None, today: dt.date) -> dt.date | None:
    """A date (or ISO time: its UTC date), or a duration before now (``30d``)."""
    if not value:
        return None
    try:
        return today - dt.timedelta(seconds=parse_duration(value) - 1)
    except (ValueError, OverflowError):
        pass
    try:
        when = dt.datetime.fromisoformat(value)
        return (when.astimezone(dt.UTC) if when.tzinfo else when).date()
    except (ValueError, OverflowError):
        raise problem(422, "Invalid time range", f"{name}={value[:40]!r}: give a date such as "
                      "2026-03-02 (or an ISO time) or a duration before now such as 30d",
                      kind="validation", errors=[{"path": name, "message": "not a date"}]
                      ) from None


@get("/v1/funnel", tags=["outcomes"], responses=problems(422, 503))
async def get_funnel(funnel: NamedDependency[FunnelService],
                     since: Annotated[str | None, QueryParameter(max_length=64)] = None,
                     until: Annotated[str | None, QueryParameter(max_length=64)] = None,
                     by: Annotated[str, QueryParameter(max_length=40)] = "segment",
                     ) -> FunnelReport:
    """The funnel of the leads **routed** between ``since`` and ``until`` (UTC days, both
    included; default the last 30 days), per group of ``by`` (segment, territory, source, pool,
    owner, grade, status, rule — the routing rule): routed, reached per stage (exact),
    conversion, time between stages (median / p90 within ``resolution``), won amount per
    currency and sales velocity with its inputs."""
    today = funnel.now().astimezone(dt.UTC).date()
    end = _day("until", until, today) or today
    start = _day("since", since, today) or end - _WINDOW + dt.timedelta(days=1)
    if start > end:
        raise problem(422, "Invalid time range", f"since ({start}) is after until ({end}) — "
                      "swap them", kind="validation")
    try:
        return await funnel.report(start, end, by)
    except ValueError as exc:
        raise problem(422, "Invalid funnel query", str(exc), kind="validation",
                      errors=[{"path": "by" if "dimension" in str(exc) else "since",
                               "message": str(exc)}]) from None


handlers = [post_lead_outcome, post_outcome, get_funnel]
