"""Owner actions: ``POST /v1/leads/{id}/accept`` · ``/contacted`` · ``/reject``.

The acting rep is in the body (``{"rep": "alice"}``); only the lead's current owner's action
counts (anyone else: 409 with the current owner). Accept and contacted stop the SLA clock;
reject needs a reason from the rules' ``reject_reasons`` (anything else: 422 naming them) and
recycles the lead to nurture, or reroutes it for ``wrong_territory``. The reply is the lead as
stored afterwards (as ``GET /v1/leads/{id}``). See docs/sla.md.

Who may act (router/api/auth.py ``acting_for``): the rep's own key (scope ``owner``, bound to the
rep in the body), or the admin token (or an ``admin`` key) acting for any rep; the credential is
kept in the history entry (``via``). Open only while no admin token and no key is configured.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec
from leadrouter_sdk import Decision
from litestar import Request, post
from litestar.di import NamedDependency
from litestar.params import PathParameter

from router.api._body import decode_json, require_json
from router.api.auth import acting_for
from router.api.errors import problem
from router.api.openapi import json_body, problems
from router.services.keys import ApiKeys
from router.services.records import UnknownLead
from router.services.sla import Action, Conflict, SlaService, UnknownPool, UnknownReason
from router.settings import Settings

__all__ = ["OwnerAction", "RejectAction", "handlers"]

Rep = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[^\s,]+$")]
Note = Annotated[str, msgspec.Meta(max_length=2000)]
LeadId = Annotated[str, PathParameter()]
T = TypeVar("T")


class OwnerAction(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Who acts (a rep id, as in rules/reps.yaml or the account owner), with an optional note."""

    rep: Rep
    note: Note | None = None


class RejectAction(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A rejection: ``reason`` is one of the rules' ``reject_reasons``. With ``wrong_territory``
    the rep may name the ``pool`` the lead belongs in (it is re-picked there); without one the
    lead waits in the reroute queue for sales ops."""

    rep: Rep
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    note: Note | None = None
    pool: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None


class _Caller(msgspec.Struct, frozen=True):
    """What every owner action is given: the request, and the services that check it."""

    request: Request[Any, Any, Any]
    sla: SlaService
    settings: Settings
    keys: ApiKeys


async def _body(request: Request[Any, Any, Any], tp: type[T]) -> T:
    require_json(request.headers)
    return decode_json(await request.body(), tp, hint='send e.g. {"rep": "alice"}')


async def _act(caller: _Caller, lead_id: str, action: Action,
               tp: type[OwnerAction] | type[RejectAction]) -> Decision:
    sla = caller.sla
    body = await _body(caller.request, tp)
    via = await acting_for(caller.request, caller.settings, caller.keys, body.rep)
    if len(lead_id) > 64:
        raise problem(404, "Not found", "no lead with that id", kind="lead-not-found")
    reason = body.reason if isinstance(body, RejectAction) else None
    pool = body.pool if isinstance(body, RejectAction) else None
    try:
        return await sla.act(lead_id, action, rep=body.rep, reason=reason,
                             note=body.note, pool=pool, via=via)
    except UnknownLead:
        raise problem(404, "Not found", f"no lead {lead_id!r} (it may have expired after the "
                      "decision retention period)", kind="lead-not-found") from None
    except Conflict as exc:
        raise problem(409, "Not the current owner" if exc.owner != body.rep else
                      "Action not allowed now", str(exc), kind="owner-conflict",
                      owner=exc.owner, state=exc.state) from None
    except UnknownReason as exc:
        allowed = ", ".join(exc.allowed)
        raise problem(422, "Unknown reject reason", f"$.reason: {exc} — use one of: {allowed}",
                      kind="reject-reason", allowed=list(exc.allowed),
                      errors=[{"path": "$.reason", "message": f"use one of: {allowed}"}]
                      ) from None
    except UnknownPool as exc:
        raise problem(422, "Unknown pool", f"$.pool: {exc} — pools: {', '.join(exc.allowed)}",
                      kind="validation", allowed=list(exc.allowed),
                      errors=[{"path": "$.pool", "message": str(exc)}]) from None


@post("/v1/leads/{lead_id:str}/accept", tags=["sla"], status_code=200,
      responses=problems(409, 415),
      operation_class=json_body(OwnerAction, "The acting rep, e.g. {\"rep\": \"alice\"}."))
async def accept_lead(request: Request[Any, Any, Any], lead_id: LeadId,
                      sla: NamedDependency[SlaService], settings: NamedDependency[Settings],
                      keys: NamedDependency[ApiKeys]) -> Decision:
    """The owner accepts the lead: the SLA clock stops (in time or late). Repeating it is
    harmless. A queued lead nobody owns is taken by the rep who accepts it."""
    return await _act(_Caller(request, sla, settings, keys), lead_id, "accept", OwnerAction)


@post("/v1/leads/{lead_id:str}/contacted", tags=["sla"], status_code=200,
      responses=problems(409, 415),
      operation_class=json_body(OwnerAction, "The acting rep, e.g. {\"rep\": \"alice\"}."))
async def contacted_lead(request: Request[Any, Any, Any], lead_id: LeadId,
                         sla: NamedDependency[SlaService], settings: NamedDependency[Settings],
                         keys: NamedDependency[ApiKeys]) -> Decision:
    """The owner has contacted the lead (stops the SLA clock if it still runs)."""
    return await _act(_Caller(request, sla, settings, keys), lead_id, "contacted", OwnerAction)


@post("/v1/leads/{lead_id:str}/reject", tags=["sla"], status_code=200,
      responses=problems(409, 415),
      operation_class=json_body(RejectAction, "The acting rep and the reason, e.g. "
                                "{\"rep\": \"alice\", \"reason\": \"no_budget\"}."))
async def reject_lead(request: Request[Any, Any, Any], lead_id: LeadId,
                      sla: NamedDependency[SlaService], settings: NamedDependency[Settings],
                      keys: NamedDependency[ApiKeys]) -> Decision:
    """The owner rejects the lead with a reason: it is recycled to nurture (status nurture),
    or rerouted for ``wrong_territory``; the reason is counted in the SLA report."""
    return await _act(_Caller(request, sla, settings, keys), lead_id, "reject", RejectAction)


handlers = [accept_lead, contacted_lead, reject_lead]
