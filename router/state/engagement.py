"""Engagement state: events per person, aliases, and the re-qualification of existing leads.

Key layout (all under the store's ``Keys.base``, ``lr:{lr}:``: like every key of the
deployment, in its one cluster slot)::

    eng:PERSON               hash    lead, dom, seq, nt, traits, traits_at, recent, ids,
                                     e:<type> = [n, rem, rem_at, t1..tk]   TTL R after the
                                                                            last event
    eng:PERSON:seen          zset    messageIds → received ms, newest 500   TTL min(2 d, R)
    eng:alias:KIND:HASH      str     PERSON an anonymous / user id stands for     TTL R

``R`` is the engagement retention (``LEADROUTER_ENGAGEMENT_RETENTION``, 400 days by default,
:meth:`EngagementLimits.retained`); event times older than ``min(365 d, R)`` are folded when
their type is next written.

``PERSON`` is ``e:<sha256 of the email>`` (the same hash as the erasure index, so no address
appears in a key), ``a:<hash>`` / ``u:<hash>`` for an anonymousId / userId nobody identified
yet, ``l:<lead id>`` for a lead without an email.

Bounds per person: at most ``max_types`` event types (types the rules read are always kept),
each with at most ``max_times`` times and none older than the 365-day horizon (older ones fold
into one decayed remainder, see router/engine/engagement.py), ``recent_max`` causes, the seen
set capped by count and age. So a person costs a few KB however many events arrive.

Scripts: ``lua/event.lua`` (record one event), ``lua/identify.lua`` (aliases, merges, traits),
``lua/requalify.lua`` (apply a re-evaluation to an existing lead: rescore, or hand it over with
the shared pool pick ``_pick.lua`` and SLA bookkeeping ``_sla.lua``).

This module is the public face and the reads; the script calls are
router/state/_engagement_scripts.py, the records and the decoding of replies
router/state/_engagement_model.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from router.engine.engagement import TypeActivity
from router.state._engagement_model import (
    Cause,
    EngagementKeys,
    EngagementLimits,
    LeadRead,
    PersonRead,
    PersonState,
    Recorded,
    RequalifyResult,
    alias_id,
    decode_lead_ref,
    email_person,
    lead_commands,
    lead_person,
    lead_read,
    parse_person,
    want,
)
from router.state._engagement_scripts import EngagementScripts, Requalify
from router.state.codec import text
from router.state.errors import check_reply, translate_errors
from router.state.store import Store

__all__ = [
    "Cause",
    "EngagementKeys",
    "EngagementLimits",
    "EngagementStore",
    "LeadRead",
    "PersonRead",
    "PersonState",
    "Recorded",
    "Requalify",
    "RequalifyResult",
    "alias_id",
    "email_person",
    "erase_person",
    "lead_person",
]


class EngagementStore(EngagementScripts):
    """The engagement operations on one :class:`Store` (sharing its connection): the script
    calls (``record``, ``identify``, ``requalify``; router/state/_engagement_scripts.py) and
    the reads below."""

    # -- identity ------------------------------------------------------------------------------

    async def resolve(self, aliases: Sequence[str]) -> list[str | None]:
        """The person each alias id stands for, or None (one round trip)."""
        if not aliases:
            return []
        with translate_errors("resolve"):
            self._count(1)
            values = await self.store.wire.call(
                "MGET", *(self.keys.alias(a) for a in aliases))
        return [text(v) for v in values]

    async def lead_email(self, lead_id: str) -> tuple[bool, str | None, str | None]:
        """(exists, email, source) of a stored lead (one round trip)."""
        with translate_errors("lead_email"):
            self._count(1)
            raw = await self.store.wire.call("HGET", self.store.keys.lead(lead_id), "decision")
        if raw is None:
            return False, None, None
        record = decode_lead_ref(raw)
        email = record.lead.get("email")
        return True, email if isinstance(email, str) else None, record.source

    async def lead_by_external_id(self, scopes: Sequence[str], external_id: str) -> str | None:
        """The lead an ``external_id`` created: its idempotency record under the first of
        ``scopes`` (``ext:<channel>:<lead source>``, see router/services/leads.py) that has one (one
        round trip); None if there is none."""
        if not scopes:
            return None
        with translate_errors("external_id"):
            self._count(1)
            values = await self.store.wire.call(
                "MGET", *(self.store.keys.idempotency(sc, external_id) for sc in scopes))
        for value in values:
            kind, _, rest = (value or b"").decode().partition("|")
            if kind == "D":
                return rest.partition("|")[2]
        return None

    async def person(self, person: str, types: Sequence[str] | None = None) -> PersonState | None:
        """Everything stored about ``person`` (all its event types unless ``types``)."""
        with translate_errors("person"):
            self._count(1)
            flat = await self.store.wire.call("HGETALL", self.keys.person(person))
        if not flat:
            return None
        f = {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}
        names = list(types) if types is not None else sorted(
            k[2:] for k in f if k.startswith("e:"))
        values = [f.get(k) for k in want(names)]
        return parse_person(person, names, values, lead=text(f.get("lead")),
                            dom=text(f.get("dom")), seq=int(f.get("seq") or 0))

    # -- re-qualification ----------------------------------------------------------------------

    async def read_lead(self, lead_id: str, account_domain: str | None) -> LeadRead | None:
        """The lead's decision and live fields, and the owner of ``account_domain`` (one
        round trip); None if the lead is gone."""
        with translate_errors("read_lead"):
            self._count(1)
            replies = await self.store.wire.batch(
                lead_commands(self.store.keys, lead_id, account_domain))
        for reply in replies:
            check_reply("read_lead", reply)
        return lead_read(lead_id, replies, account_domain)

    async def account_owner(self, domain: str) -> str | None:
        with translate_errors("account"):
            self._count(1)
            return text(await self.store.wire.call(
                "HGET", self.store.keys.account(domain), "owner"))

    # -- erasure -------------------------------------------------------------------------------

    async def erase(self, persons: Sequence[str]) -> int:
        """Delete everything stored about ``persons`` and the aliases that point to them (two
        round trips); returns how many events they held."""
        if not persons:
            return 0
        with translate_errors("erase engagement"):
            self._count(1)
            replies = await self.store.wire.batch(
                [("HGETALL", self.keys.person(p)) for p in persons])
        doomed: list[str] = []
        events = 0
        for person, flat in zip(persons, replies, strict=True):
            check_reply("erase engagement", flat)
            f = {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}
            events += sum(TypeActivity.decode(v).n for k, v in f.items() if k.startswith("e:"))
            aliases = [a for a in (f.get("ids") or b"").decode().split(",") if a]
            doomed += [self.keys.person(person), self.keys.seen(person),
                       *(self.keys.alias(a) for a in aliases)]
        with translate_errors("erase engagement"):
            self._count(1)
            await self.store.wire.call("DEL", *doomed)
        return events


async def erase_person(store: Store, *, email: str, lead_ids: Sequence[str] = ()) -> int:
    """Erase one email's engagement (events, traits, identified ids) and that of its leads
    without the email; returns how many events were erased. For ``DELETE /v1/people/{email}``
    (router/api/people.py)."""
    return await EngagementStore(store).erase(
        [email_person(email), *(lead_person(i) for i in lead_ids)])
