"""Privacy: right of access and right to erasure.

* ``GET /v1/people/{email}``: the ids of the leads stored for that email (access requests).
* ``DELETE /v1/people/{email}``: erase all of them, and the person's engagement events.
* ``DELETE /v1/leads/{lead_id}``: erase one lead.
* ``GET /v1/admin/erasures``: when erasures happened and how much they removed — not who.

All need the admin token or an API key with the ``admin`` scope.
"""

from __future__ import annotations

import importlib
import logging
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get
from litestar.params import Parameter

from router.api.errors import problem
from router.api.sources import admin_or_key
from router.state.erasure import Erasure, erase_leads, erasure_log, lead_ids_of

__all__ = ["handlers"]

log = logging.getLogger("leadrouter.privacy")

_EMAIL = Annotated[str, Parameter(max_length=320)]
_LEAD = Annotated[str, Parameter(max_length=64)]


class PersonLeads(msgspec.Struct):
    leads: list[str]


def _email(raw: str) -> str:
    email = raw.strip().lower()
    if "@" not in email or len(email) > 320 or not email.isprintable():
        raise problem(422, "Invalid email", "the path must be an email address",
                      kind="validation", errors=[{"path": "email", "message": "not an email"}])
    return email


async def _erase_events(request: Request[Any, Any, Any], email: str, lead_ids: list[str]) -> int:
    # Engagement events belong to router/state/engagement.py (another module's records): erase
    # them through its API when this build has one.
    try:
        engagement = importlib.import_module("router.state.engagement")
    except ImportError:
        return 0
    eraser = getattr(engagement, "erase_person", None)
    if eraser is None:
        log.warning("engagement events not erased: router.state.engagement has no erase_person")
        return 0
    return int(await eraser(request.app.state.ctx.store, email=email, lead_ids=lead_ids))


def _now_ms(request: Request[Any, Any, Any]) -> int:
    return int(request.app.state.ctx.now().timestamp() * 1000)


@get("/v1/people/{email:str}", tags=["privacy"])
async def get_person(request: Request[Any, Any, Any], email: _EMAIL) -> PersonLeads:
    """The ids of the stored leads of one email address (right of access)."""
    await admin_or_key(request)
    return PersonLeads(leads=await lead_ids_of(request.app.state.ctx.store, _email(email)))


@delete("/v1/people/{email:str}", tags=["privacy"], status_code=200)
async def erase_person(request: Request[Any, Any, Any], email: _EMAIL) -> Erasure:
    """Erase every lead and engagement event of one email address (right to erasure)."""
    by = await admin_or_key(request)
    address = _email(email)
    store = request.app.state.ctx.store
    ids = await lead_ids_of(store, address)
    events = await _erase_events(request, address, ids)
    entry = await erase_leads(store, ids, now_ms=_now_ms(request), kind="person", by=by,
                              email=address, events=events)
    log.info("person erased", extra={"erasure": entry.id, "leads": entry.leads})
    return entry


@delete("/v1/leads/{lead_id:str}", tags=["privacy"], status_code=200)
async def erase_lead(request: Request[Any, Any, Any], lead_id: _LEAD) -> Erasure:
    """Erase one lead: decision, history, queue and SLA entries, outbox events."""
    by = await admin_or_key(request)
    store = request.app.state.ctx.store
    if await store.get_lead(lead_id) is None:
        raise problem(404, "Not found", f"no lead {lead_id!r}", kind="lead-not-found")
    entry = await erase_leads(store, [lead_id], now_ms=_now_ms(request), kind="lead", by=by)
    log.info("lead erased", extra={"erasure": entry.id})
    return entry


@get("/v1/admin/erasures", tags=["privacy"])
async def list_erasures(request: Request[Any, Any, Any],
                        count: Annotated[int, Parameter(ge=1, le=1000)] = 100) -> list[Erasure]:
    """The erasure log, newest first: when, what kind, how many records; never who."""
    await admin_or_key(request)
    return await erasure_log(request.app.state.ctx.store, count)


handlers = [get_person, erase_person, erase_lead, list_erasures]
