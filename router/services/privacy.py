"""Privacy: what is stored about a person, and the right to erasure.

``DELETE /v1/people/{email}`` and ``DELETE /v1/leads/{id}`` (router/api/people.py) erase
through here: the leads (router/state/erasure.py) and the person's engagement events
(router/state/engagement.py), then one entry in the erasure log that says when and how much —
never who. The API answers; this module decides what an erasure covers.
"""

from __future__ import annotations

from router.services.clock import Clock
from router.services.records import UnknownLead
from router.state.audit import Actor, Recorder
from router.state.engagement import (
    EngagementStore,
    PersonState,
    email_person,
    erase_person,
    lead_person,
)
from router.state.erasure import Erasure, erase_leads, erasure_log, lead_ids_of
from router.state.store import Store

__all__ = ["Erasure", "PersonState", "PrivacyService", "UnknownLead"]


class PrivacyService:
    """Access and erasure requests on one store; ``by`` is who asked (its credential, a key
    id or ``admin-token``, goes in the erasure log; the audit log gets the counts only)."""

    def __init__(self, *, store: Store, engagement: EngagementStore, clock: Clock,
                 record: Recorder | None = None) -> None:
        self.store = store
        self.engagement = engagement
        self.clock = clock
        self.record = record  # the audit log (router/services/audit.py); None: not recorded

    async def _audit(self, by: Actor, entry: Erasure) -> Erasure:
        if self.record:  # how much, never what: no email, no lead id
            await self.record(by, "lead.erased", f"erasure:{entry.id}", {
                "erasure": entry.id, "kind": entry.kind, "leads": entry.leads,
                "events": entry.events, "outbox_entries": entry.outbox_entries})
        return entry

    async def lead_ids(self, email: str) -> list[str]:
        """The ids of the stored leads of ``email`` (normalised: trimmed, lower case)."""
        return await lead_ids_of(self.store, email)

    async def erase_person(self, email: str, *, by: Actor) -> Erasure:
        """Every lead and engagement event of ``email``; returns the log entry."""
        ids = await lead_ids_of(self.store, email)
        events = await erase_person(self.store, email=email, lead_ids=ids)
        return await self._audit(by, await erase_leads(
            self.store, ids, now_ms=self.clock.ms(), kind="person", by=by.credential,
            email=email, events=events))

    async def erase_lead(self, lead_id: str, *, by: Actor) -> Erasure:
        """One lead: decision, history, queue and SLA entries, outbox events; UnknownLead if
        there is no such lead."""
        if await self.store.get_lead(lead_id) is None:
            raise UnknownLead(f"no lead {lead_id!r}")
        return await self._audit(by, await erase_leads(
            self.store, [lead_id], now_ms=self.clock.ms(), kind="lead", by=by.credential))

    async def erasures(self, count: int = 100) -> list[Erasure]:
        """The erasure log, newest first."""
        return await erasure_log(self.store, count)

    async def engagement_of_email(self, email: str) -> PersonState | None:
        """The engagement stored for a (normalised) email, or None."""
        return await self.engagement.person(email_person(email))

    async def engagement_of_lead(self, lead_id: str) -> PersonState | None:
        """The engagement of a lead's person (its email's, or the lead's own when it has no
        email); UnknownLead if there is no such lead."""
        exists, address, _ = await self.engagement.lead_email(lead_id)
        if not exists:
            raise UnknownLead(f"no lead {lead_id!r}")
        return await self.engagement.person(email_person(address) if address
                                            else lead_person(lead_id))
