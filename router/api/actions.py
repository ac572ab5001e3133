"""The signed action-link pages: ``GET /a/{token}`` confirms, ``POST /a/{token}`` acts.

The token (router/services/action_links.py) names the lead, the rep, the action and the
expiry, signed with ``LEADROUTER_ACTION_SECRET``. ``GET`` only reads — mail scanners and chat
unfurlers fetch links — and shows the lead (no name, email or phone) with a form; ``POST``
performs the action through the owner-action service (router/services/sla.py: the same rules
as ``POST /v1/leads/{id}/accept``), as the link's rep, recorded ``via: link``, and spends the
link. Every refusal is a page with its status: 400 forged, 403 another rep's lead, 404 gone
or links off, 409 stale owner or nothing to do, 410 expired or used, 422 a reason missing,
503 (with ``Retry-After``) while Redis is down; never a 500.

CSRF: no cookie or other ambient credential exists here; the POST's credential is the token in
its own URL, which a cross-site page cannot know. The responses forbid framing (clickjacking),
caching and the Referer header (the token must not leak to other sites).
"""

from __future__ import annotations

import urllib.parse
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import PathParameter
from litestar.response import Template

from router.services.action_links import (
    ActionLinks,
    LeadSummary,
    LinkClaims,
    LinkRefused,
    StoreUnavailable,
)
from router.services.records import UnknownLead
from router.services.sla import ACTIONS, Conflict, SlaService, UnknownPool, UnknownReason

__all__ = ["handlers"]

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": "default-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'",
}
_REFUSED = {"forged": (400, "This link is not valid",
                       "Open the link from the message you received, completely."),
            "expired": (410, "This link has expired",
                        "Act on the lead from your CRM or the API, or ask for a new link."),
            "spent": (410, "This link has been used already",
                      "Each link works once; the lead's page in your CRM shows where it is."),
            "busy": (409, "This link is being used right now",
                     "Wait a few seconds and reload the page."),
            "disabled": (404, "Action links are off",
                         "Ask your administrator to set LEADROUTER_ACTION_SECRET.")}
_BUTTON = {"accept": "Accept this lead", "contacted": "Mark as contacted",
           "reject": "Reject this lead", "any": "Confirm"}
_MAX_FORM = 8192
Token = Annotated[str, PathParameter()]


def _page(name: str, status: int, **context: Any) -> Template:
    return Template(template_name=f"actions/{name}.html", context=context,
                    status_code=status, headers=_HEADERS)


def _refused(kind: str, message: str | None = None,
             summary: LeadSummary | None = None) -> Template:
    status, heading, hint = _REFUSED[kind]
    if message is not None and message.lower() == heading.lower():
        message = None  # the heading says it all
    else:
        message = message[:1].upper() + message[1:] + "." if message else None
    return _page("refused", status, page=kind, heading=heading, message=message,
                 hint=hint, summary=summary)


def _unavailable(request: Request[Any, Any, Any]) -> Template:
    retry = str(getattr(request.app.state, "retry_after", 2))
    return Template(template_name="actions/refused.html", status_code=503,
                    headers={**_HEADERS, "Retry-After": retry},
                    context={"page": "unavailable", "heading": "Try again in a moment",
                             "message": "The service cannot reach its database right now.",
                             "hint": f"Nothing was changed. Reload in {retry} seconds.",
                             "summary": None})


def _stale(claims: LinkClaims, owner: str | None, state: str | None,
           summary: LeadSummary | None) -> Template:
    """The rep may not act: another owner now, or nothing left to do."""
    if owner == claims.rep or not owner:
        return _page("refused", 409, page="closed", heading="Nothing to do",
                     message=f"This lead is {state} now: there is nothing to {claims.action}.",
                     hint=None, summary=summary)
    ever = summary is not None and claims.rep in summary.owners
    return _page("refused", 409 if ever else 403, page="stale",
                 heading="This lead has moved on" if ever else "Not your lead",
                 message=f"This lead is owned by {owner} now: your link for {claims.rep} no "
                 "longer counts.",
                 hint="Only the lead's current owner can act on it.", summary=summary)


def _form(raw: bytes) -> dict[str, str]:
    if len(raw) > _MAX_FORM:
        return {}
    fields = urllib.parse.parse_qs(raw.decode("utf-8", "replace"), max_num_fields=10)
    return {k: v[0][:2000] for k, v in fields.items() if v}


def _confirm(claims: LinkClaims, summary: LeadSummary, reasons: tuple[str, ...], *,
             status: int = 200, error: str | None = None, reason: str = "") -> Template:
    heading = {"accept": "Accept this lead?", "contacted": "Mark this lead as contacted?",
               "reject": "Reject this lead?", "any": "Act on this lead"}[claims.action]
    return _page("confirm", status, page="confirm", heading=heading, rep=claims.rep,
                 action=claims.action, reasons=reasons, reason=reason, error=error,
                 button=_BUTTON[claims.action], expires_at=claims.expires_at, summary=summary)


@get("/a/{token:str}", include_in_schema=False)
async def show_link(request: Request[Any, Any, Any], token: Token,
                    links: NamedDependency[ActionLinks],
                    sla: NamedDependency[SlaService]) -> Template:
    """The confirmation page; reads only."""
    try:
        claims = links.verify(token)
        if await links.use_of(claims) != "unused":
            return _refused("spent")
        summary = await links.summary(claims.lead)
        if summary is None:
            return _gone()
        owner, state = summary.decision.assignment.owner, summary.state
        if owner != claims.rep and not (state == "queued" and not owner):
            return _stale(claims, owner, state, summary)
        if state not in ("assigned", "queued", "accepted", "contacted"):
            return _stale(claims, owner, state, summary)
        return _confirm(claims, summary, sla.rules.current.reject_reasons)
    except LinkRefused as exc:
        return _refused(exc.kind, str(exc))
    except StoreUnavailable:
        return _unavailable(request)


def _gone() -> Template:
    return _page("refused", 404, page="gone", heading="This lead is gone",
                 message="The lead no longer exists (erased, or past its retention).",
                 hint=None, summary=None)


@post("/a/{token:str}", include_in_schema=False, status_code=200)
async def use_link(request: Request[Any, Any, Any], token: Token,
                   links: NamedDependency[ActionLinks],
                   sla: NamedDependency[SlaService]) -> Template:
    """Perform the link's action as its rep, spend the link, show what happened."""
    try:
        claims = links.verify(token)
        form = _form(await request.body())
        chosen = claims.action if claims.action != "any" else form.get("action", "")
        action = next((a for a in ACTIONS if a == chosen), None)
        if action is None:
            return _refused("forged", "choose accept, contacted or reject")
        reason = form.get("reason") or None
        reasons = sla.rules.current.reject_reasons
        if action == "reject" and reason not in reasons:
            summary = await links.summary(claims.lead)
            if summary is None:
                return _gone()
            return _confirm(claims, summary, reasons, status=422,
                            error="Choose one of the reasons to reject the lead.")
        await links.begin(claims)
        try:
            decision = await sla.act(claims.lead, action, rep=claims.rep, reason=reason,
                                     note=form.get("note") or None, via="link")
        except BaseException:
            await links.release(claims)
            raise
        await links.spend(claims)
        summary = await links.summary(claims.lead)
        if summary is None:
            return _gone()
        return _page("done", 200, page="done", heading="Done", summary=summary,
                     message=_done_message(action, reason, decision.sla.state))
    except LinkRefused as exc:
        return _refused(exc.kind, str(exc))
    except UnknownLead:
        return _gone()
    except Conflict as exc:
        return _stale(claims, exc.owner, exc.state, await _summary_if_up(links, claims))
    except (UnknownReason, UnknownPool) as exc:
        return _page("refused", 422, page="reason", heading="Not accepted", message=str(exc),
                     hint="Open the link again and choose one of the listed reasons.",
                     summary=None)
    except StoreUnavailable:
        return _unavailable(request)


async def _summary_if_up(links: ActionLinks, claims: LinkClaims) -> LeadSummary | None:
    """The lead for a refusal page; without it (Redis gone meanwhile) the page still says why."""
    try:
        return await links.summary(claims.lead)
    except StoreUnavailable:
        return None


def _done_message(action: str, reason: str | None, sla_state: str | None) -> str:
    if action == "reject":
        return f"Rejected ({(reason or '').replace('_', ' ')}): the lead has been handed on."
    timing = {"met": " within the SLA", "late": ", after the SLA deadline"}.get(
        sla_state or "", "")
    what = "Accepted" if action == "accept" else "Marked as contacted"
    return f"{what}{timing}. The lead is yours."


handlers = [show_link, use_link]
