"""Privacy: right of access and right to erasure.

* ``GET /v1/people/{email}``: the ids of the leads stored for that email (access requests).
* ``DELETE /v1/people/{email}``: erase all of them, and the person's engagement events.
* ``DELETE /v1/leads/{lead_id}``: erase one lead.
* ``GET /v1/admin/erasures``: when erasures happened and how much they removed — not who.

All need the admin token or an API key with the ``admin`` scope. What an erasure covers is
decided in router/services/privacy.py.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get
from litestar.di import NamedDependency
from litestar.params import Parameter

from router.api.auth import admin_actor, admin_or_key
from router.api.errors import problem
from router.api.openapi import problems
from router.services.keys import ApiKeys
from router.services.privacy import Erasure, PrivacyService
from router.services.records import UnknownLead
from router.settings import Settings

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


@get("/v1/people/{email:str}", tags=["privacy"], responses=problems(422))
async def get_person(request: Request[Any, Any, Any], email: _EMAIL,
                     settings: NamedDependency[Settings], keys: NamedDependency[ApiKeys],
                     privacy: NamedDependency[PrivacyService]) -> PersonLeads:
    """The ids of the stored leads of one email address (right of access)."""
    await admin_or_key(request, settings, keys)
    return PersonLeads(leads=await privacy.lead_ids(_email(email)))


@delete("/v1/people/{email:str}", tags=["privacy"], status_code=200, responses=problems(422))
async def erase_person(request: Request[Any, Any, Any], email: _EMAIL,
                       settings: NamedDependency[Settings], keys: NamedDependency[ApiKeys],
                       privacy: NamedDependency[PrivacyService]) -> Erasure:
    """Erase every lead and engagement event of one email address (right to erasure)."""
    by = await admin_actor(request, settings, keys)
    entry = await privacy.erase_person(_email(email), by=by)
    log.info("person erased", extra={"erasure": entry.id, "leads": entry.leads})
    return entry


@delete("/v1/leads/{lead_id:str}", tags=["privacy"], status_code=200)
async def erase_lead(request: Request[Any, Any, Any], lead_id: _LEAD,
                     settings: NamedDependency[Settings], keys: NamedDependency[ApiKeys],
                     privacy: NamedDependency[PrivacyService]) -> Erasure:
    """Erase one lead: decision, history, queue and SLA entries, outbox events."""
    by = await admin_actor(request, settings, keys)
    try:
        entry = await privacy.erase_lead(lead_id, by=by)
    except UnknownLead:
        raise problem(404, "Not found", f"no lead {lead_id!r}", kind="lead-not-found") from None
    log.info("lead erased", extra={"erasure": entry.id})
    return entry


@get("/v1/admin/erasures", tags=["privacy"])
async def list_erasures(request: Request[Any, Any, Any], settings: NamedDependency[Settings],
                        keys: NamedDependency[ApiKeys], privacy: NamedDependency[PrivacyService],
                        count: Annotated[int, Parameter(ge=1, le=1000)] = 100) -> list[Erasure]:
    """The erasure log, newest first: when, what kind, how many records; never who."""
    await admin_or_key(request, settings, keys)
    return await privacy.erasures(count)


handlers = [get_person, erase_person, erase_lead, list_erasures]
