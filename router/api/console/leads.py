"""``/ui/leads/{id}``: one lead — its decision, score waterfall, routing path, why X and why
not Y, SLA clock, history — and the owner actions (admin sessions only); ``/ui/leads``: the
filterable list (router/api/console/leads_list.py); ``/ui/queues``
(queues.py).

The owner actions post here and call the same service as ``POST /v1/leads/{id}/accept`` ·
``/contacted`` · ``/reject`` (router/services/sla.py ``SlaService.act``); the history keeps
the console session's credential (``via``: the admin token or the key id). Re-route is a
reject with ``wrong_territory`` and the pool the lead belongs in.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import msgspec
from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from router.api.console._format import duration, ts
from router.api.console._session import Admin, Req, Session, Viewer, page
from router.api.console._waterfall import waterfall_svg
from router.api.console.leads_list import handlers as list_pages
from router.api.console.queues import handlers as queue_pages
from router.services.clock import Clock
from router.services.lead_page import LeadPage, read_lead_page
from router.services.leads import LeadService
from router.services.records import UnknownLead
from router.services.rules import RulesManager
from router.services.sla import WRONG_TERRITORY, Conflict, SlaService, UnknownPool, UnknownReason

__all__ = ["handlers"]

_REP = re.compile(r"^[^\s,]{1,100}$")
_ACTIONS = ("accept", "contacted", "reject", "reroute")
_DONE = {"accept": "Accepted", "contacted": "Marked as contacted", "reject": "Rejected",
         "reroute": "Re-routed"}


def _lead_fields(p: LeadPage) -> list[tuple[str, Any]]:
    fields = msgspec.structs.asdict(p.lead)
    attributes = fields.pop("attributes", None) or {}
    out = [(k, v) for k, v in fields.items() if v not in (None, "", {}, [])]
    return out + [(f"attributes.{k}", v) for k, v in attributes.items()]


def _lead_title(p: LeadPage) -> str:
    lead = p.lead
    name = " ".join(x for x in (lead.first_name, lead.last_name) if x)
    return name or lead.email or lead.company or p.decision.lead_id


def _not_found(request: Req, viewer: Session, lead_id: str) -> Template:
    return page(request, viewer, "console/lead_missing.html", "leads", status_code=404,
                lead_id=lead_id)


async def _render(request: Req, viewer: Session, lead_id: str, leads: LeadService,
                  rules: RulesManager, clock: Clock, *, error: str = "",
                  status_code: int = 200) -> Template:
    p = await read_lead_page(leads.store, rules.current, lead_id, clock()) \
        if len(lead_id) <= 64 else None
    if p is None:
        return _not_found(request, viewer, lead_id)
    done = request.query_params.get("done", "")
    return page(request, viewer, "console/lead.html", "leads", status_code=status_code,
                p=p, d=p.decision, title=_lead_title(p), fields=_lead_fields(p),
                chart=waterfall_svg(p.bars), duration=duration, ts=ts,
                done=_DONE.get(done, ""), error=error,
                reroute=WRONG_TERRITORY in p.reject_reasons,
                reasons=[r for r in p.reject_reasons if r != WRONG_TERRITORY])


@get("/leads/{lead_id:str}", include_in_schema=False)
async def lead_page(request: Req, viewer: Viewer, lead_id: FromPath[str],
                    leads: NamedDependency[LeadService], rules: NamedDependency[RulesManager],
                    clock: NamedDependency[Clock]) -> Template:
    return await _render(request, viewer, lead_id, leads, rules, clock)


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value.strip() or None if isinstance(value, str) else None


@post("/leads/{lead_id:str}/act", include_in_schema=False, status_code=303)
async def lead_action(request: Req, admin: Admin, lead_id: FromPath[str],
                      sla: NamedDependency[SlaService], leads: NamedDependency[LeadService],
                      rules: NamedDependency[RulesManager], clock: NamedDependency[Clock]
                      ) -> Redirect | Template:
    """An owner action from the lead page's forms (admin sessions: ``admin`` refuses viewers
    with 403 before anything runs)."""
    form = await request.form()
    action, rep = _field(form, "action") or "", _field(form, "rep") or ""
    reason, note, pool = _field(form, "reason"), _field(form, "note"), _field(form, "pool")

    async def fail(message: str, status: int) -> Template:
        return await _render(request, admin, lead_id, leads, rules, clock, error=message,
                             status_code=status)

    if action not in _ACTIONS:
        return await fail(f"unknown action {action!r}: use one of {', '.join(_ACTIONS)}", 422)
    if not _REP.match(rep):
        return await fail("rep: give the rep id who acts (e.g. the current owner), without "
                          "spaces or commas", 422)
    if note is not None and len(note) > 2000:
        return await fail("note: at most 2000 characters", 422)
    if action == "reroute":
        action, reason = "reject", WRONG_TERRITORY
        if pool is None:
            return await fail("pick the pool the lead belongs in", 422)
    if len(lead_id) > 64:
        return _not_found(request, admin, lead_id)
    try:
        await sla.act(lead_id, "reject" if action == "reject" else
                      "accept" if action == "accept" else "contacted", rep=rep, reason=reason,
                      note=note, pool=pool if reason == WRONG_TERRITORY else None,
                      via=admin.who)
    except UnknownLead:
        return _not_found(request, admin, lead_id)
    except Conflict as exc:
        return await fail(f"{exc} (current owner: {exc.owner or 'nobody'})", 409)
    except UnknownReason as exc:
        return await fail(f"reason: {exc} — use one of: {', '.join(exc.allowed)}", 422)
    except UnknownPool as exc:
        return await fail(f"pool: {exc} — pools: {', '.join(exc.allowed)}", 422)
    done = "reroute" if reason == WRONG_TERRITORY and pool else action
    return Redirect(f"/ui/leads/{quote(lead_id, safe='')}?done={done}", status_code=303)


# The leads list and the queues pages come in with this module (one line in __init__).
handlers = [lead_page, lead_action, *list_pages, *queue_pages]
