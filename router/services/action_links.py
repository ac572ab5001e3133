"""Signed action links that act once: :class:`ActionLinks` is the link maker
(router/services/link_signing.py: signing, checking, the outbox's links — no store) with the
single-use record in Redis (router/state/action_links.py) and the lead a link's page shows,
for the pages (router/api/actions.py). The names of link_signing.py are re-exported here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import msgspec
from leadrouter_sdk import Decision

from router.services.link_signing import (
    ACTIONS,
    LINK_EVENTS,
    LinkAction,
    LinkClaims,
    LinkMaker,
    LinkRefused,
    LinkSigner,
    signer_of,
)
from router.services.records import decode_record, from_stored
from router.settings import Settings
from router.state.action_links import LinkUses, Use
from router.state.errors import StateError as StoreUnavailable
from router.state.store import Store

__all__ = [
    "ACTIONS",
    "LINK_EVENTS",
    "ActionLinks",
    "LeadSummary",
    "LinkAction",
    "LinkClaims",
    "LinkMaker",
    "LinkRefused",
    "LinkSigner",
    "StoreUnavailable",
    "signer_of",
]

# StoreUnavailable: Redis could not be asked (down, timed out); the pages answer 503 with it.


class LeadSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What a link's page shows of a lead: no name, email, phone or address."""

    decision: Decision
    state: str  # assigned, queued, accepted, contacted, recycled...
    owners: tuple[str, ...]  # every rep who has owned it
    company: str | None
    industry: str | None
    country: str | None
    employees: int | None


class ActionLinks(LinkMaker):
    """Links for one process: making them (outbox events), checking them, spending them once."""

    def __init__(self, *, settings: Settings, store: Store,
                 clock: Callable[[], dt.datetime]) -> None:
        super().__init__(settings=settings, clock=clock)
        self.uses = LinkUses(store)
        self.store = store

    async def use_of(self, claims: LinkClaims) -> Use:
        return await self.uses.state(claims.lid)

    async def begin(self, claims: LinkClaims) -> None:
        """Hold the link for one action; raises LinkRefused when it is spent or busy."""
        got = await self.uses.begin(claims.lid)
        if got == "spent":
            raise LinkRefused("spent", "this link has been used already")
        if got == "busy":
            raise LinkRefused("busy", "this link is being used right now")

    async def spend(self, claims: LinkClaims) -> None:
        ttl = claims.expires_at - self.now()
        await self.uses.spend(claims.lid, int(ttl.total_seconds() * 1000))

    async def release(self, claims: LinkClaims) -> None:
        await self.uses.release(claims.lid)

    async def summary(self, lead_id: str) -> LeadSummary | None:
        """The lead as a link's page shows it, None when it is gone."""
        stored = await self.store.get_lead(lead_id)
        if stored is None:
            return None
        lead: Any = decode_record(stored.decision).lead
        return LeadSummary(decision=from_stored(stored), state=stored.state,
                           owners=stored.owners or ((stored.owner,) if stored.owner else ()),
                           company=lead.company,
                           industry=lead.industry, country=lead.country,
                           employees=lead.employees)
