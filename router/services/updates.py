"""A lead's ``external_id`` sent again with other data, under ``external_id_repeat: update``
(rules/intake.yaml, docs/intake.md "Updates"): the stored lead takes the new data and is
decided again — through the re-qualification path engagement uses (:meth:`EngagementService.plan`
and lua/requalify.lua), so there is one mechanism for deciding an existing lead again:

* score, status, territory, segment, matched rules and the explanation are the new data's,
  decided with the current rules and the person's engagement;
* where the lead goes follows re-qualification: a rise in status routes it like a new lead (and
  starts its SLA clock) unless a rep is working it (then the rep keeps it); anything else
  leaves the owner or queue as they are;
* the history gets an ``updated`` entry: the fields that changed (names, not values), the
  status and score before and after;
* the lead keeps its id, its ``created_at`` and the input of its arrival (the replay decides
  the lead as it first arrived, as for an engagement re-score).

:class:`~router.services.leads.LeadService` calls :func:`update_lead` (given by the app) and
then points the idempotency records at the new data.
"""

from __future__ import annotations

from typing import Any

import msgspec
from leadrouter_sdk import Lead, Step

from router.services.engagement import EngagementService
from router.services.records import decode_record
from router.state.engagement import PersonState, email_person, lead_person
from router.state.errors import StateError

__all__ = ["update_lead"]

_FIELDS = Lead.__struct_fields__


async def update_lead(engagement: EngagementService, lead_id: str, lead: Lead,
                      notes: tuple[Step, ...]) -> str:
    """Store ``lead`` (enriched; ``notes``: its enrichment steps) as lead ``lead_id`` and
    decide it again. Returns lua/requalify.lua's status: ``requalified`` (status rose),
    ``rescored`` (anything else) or ``not_found`` (the lead expired)."""
    svc = engagement
    ruleset = svc.rules.current
    person = email_person(lead.email) if lead.email else lead_person(lead_id)
    for _ in range(5):  # the lead may move under us (accepted, reassigned...): read again
        now = svc.now()
        state = await svc.state.person(person, ruleset.engagement_events) \
            if lead.email else None
        read = await svc.state.read_lead(lead_id, None)
        if read is None:
            return "not_found"
        plan, ev, before = await svc.plan(ruleset, read, state or PersonState(person=person),
                                          now, lead=lead, notes=notes)
        after = decode_record(plan.decision).lead
        data: dict[str, Any] = {
            "changed": [f for f in _FIELDS if getattr(after, f) != getattr(before.lead, f)],
            "from": plan.entry["data"]["from"], "to": ev.status,
            "score": ev.score.total, "from_score": before.score.total,
            "rules_version": ruleset.version}
        for name in ("territory", "segment"):
            if getattr(ev, name) != getattr(before, name):
                data[name] = getattr(ev, name)
        plan = msgspec.structs.replace(plan, update=True,
                                       entry={"event": "updated", "data": data})
        result = await svc.state.requalify(plan)
        if result.status != "changed":
            return result.status
    raise StateError(f"lead {lead_id} kept changing while it was updated; retry")
