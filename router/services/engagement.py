"""Engagement: activity events in, a person's engagement updated, its lead re-scored — and
handed over to sales when the status rises.

One event (``POST /v1/events``, or a Segment ``track`` through ``/v1/sources/segment``):

1. find the person: an email (``e:``), a lead (its email, or ``l:<lead id>``), or an anonymous /
   user id, through the alias an ``identify`` left (one MGET; email events skip it);
2. ``lua/event.lua`` records it atomically: messageId dedupe, the per-type times, the sequence
   number, and returns the person's state and linked lead (one EVALSHA);
3. if a lead is linked and the rules read this event type, re-evaluate the lead with the current
   rules (read the lead: one pipelined read; the pure engine) and apply it with
   ``lua/requalify.lua`` (one EVALSHA): a rise in status routes the lead and starts its SLA
   clock, anything else records the new score — exactly once per change, see that script.

``identify`` links anonymousId / userId to the email, folds what they did anonymously into the
person, and stores the traits as lead fields: they fill what a new lead lacks, and override the
stored lead's fields on re-scoring when they are newer than the lead.

A new lead reads its person in the prefetch pipeline (router/services/snapshots.py, no extra
round trip); the commit links the person to it and reports events that slipped in between
(then :meth:`EngagementService.after_commit`, the lead service's ``rescore`` callback, re-scores
it). Re-scoring decides through :func:`router.services.decide.decide`, like a new lead.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import msgspec
from leadrouter_sdk import Lead, Score, Step

from router.engine.engagement import DEFAULT_HALF_LIFE_MS, from_ms
from router.engine.evaluate import Evaluation, Snapshot, derived
from router.engine.ruleset import Ruleset
from router.engine.schema import STATUSES
from router.intake.events import EventIn, event_from_payload
from router.observability import metrics
from router.plugins.host import PluginHost
from router.services.decide import DecisionPlan, apply_traits, decide
from router.services.records import Record, UnknownLead, decode_record, encode
from router.services.rules import RulesManager
from router.services.snapshots import snapshot_of
from router.state.engagement import (
    EngagementStore,
    LeadRead,
    PersonState,
    Recorded,
    Requalify,
    alias_id,
    email_person,
    lead_person,
)
from router.state.errors import StateError
from router.state.models import EngagementLink

__all__ = ["EngagementService", "EventResult", "LeadOutcome"]

log = logging.getLogger("leadrouter.engagement")

RANK = {status: i for i, status in enumerate(STATUSES)}
_WORKING = ("assigned", "accepted", "contacted")  # a rep has the lead


class LeadOutcome(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What an event did to the person's lead. ``outcome``: ``requalified`` (status rose:
    routed and SLA started, or kept by the rep who has it), ``rescored`` (new score or lower
    status, nothing reassigned), ``unchanged``, ``superseded`` (a concurrent event's newer
    evaluation was applied instead), ``gone`` (the lead expired)."""

    lead_id: str
    outcome: str
    status: str | None = None
    previous_status: str | None = None
    score: float | None = None
    previous_score: float | None = None
    state: str | None = None
    owner: str | None = None
    pool: str | None = None
    queue: str | None = None
    due_at: dt.datetime | None = None


class EventResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``status``: ``recorded``, ``identified``, ``duplicate`` (messageId seen: nothing
    changed), ``ignored`` (the person already has the most event types kept and the rules do
    not read this one)."""

    status: str
    event: str | None = None
    seq: int | None = None
    merged: int | None = None
    lead: LeadOutcome | None = None


# --- the service -------------------------------------------------------------------------------


class EngagementService:
    def __init__(self, *, state: EngagementStore, rules: RulesManager,
                 clock: Callable[[], dt.datetime], plugins: PluginHost | None = None) -> None:
        """``plugins``: the host live routing uses, so a re-scored lead is decided alike."""
        self.state = state
        self.rules = rules
        self.now = clock
        self.plugins = plugins
        # lead id → its person (a lead's email never changes); person → (its lead, domain), a
        # hint only: the event script returns the real link, read in the same round trip.
        self._person_of: dict[str, str] = {}
        self._lead_of: dict[str, tuple[str, str | None]] = {}

    # -- after a new lead's commit (LeadService's ``rescore`` callback) ---------------------

    async def after_commit(self, lead_id: str, link: EngagementLink) -> LeadOutcome | None:
        """Events arrived between the lead's prefetch and its commit: re-score it with them.
        The lead is committed already, so a failure here is logged, not raised."""
        try:
            state = await self.state.person(link.person, self.rules.current.engagement_events)
            if state is None:
                return None
            return await self.rescore(lead_id, state, self.now())
        except StateError:
            log.warning("re-scoring after commit failed", extra={"lead_id": lead_id},
                        exc_info=True)
            return None

    # -- events --------------------------------------------------------------------------------

    async def ingest_many(self, events: Sequence[EventIn]) -> list[EventResult | Exception]:
        """Each event's result (or the exception it raised), in order. Events of one identity
        run in order; different identities run concurrently."""
        groups: dict[str, list[int]] = {}
        for i, ev in enumerate(events):
            groups.setdefault(ev.identity, []).append(i)
        out: list[EventResult | Exception] = [Exception("not run")] * len(events)

        async def run(indexes: list[int]) -> None:
            for i in indexes:
                try:
                    out[i] = await self.ingest(events[i])
                except StateError:
                    raise
                except (UnknownLead, msgspec.ValidationError, ValueError) as exc:
                    out[i] = exc

        await asyncio.gather(*(run(ix) for ix in groups.values()))
        return out

    async def record_from_source(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """An event as the machine-source adapters produce it (router/intake/segment.py: the
        plain ``POST /v1/events`` shape, ``external_id`` for a Segment userId)."""
        try:
            result = await self.ingest(event_from_payload(event))
        except (UnknownLead, msgspec.ValidationError, ValueError) as exc:
            return {"status": "failed", "detail": str(exc)}  # that item fails, not the request
        return msgspec.to_builtins(result)  # type: ignore[no-any-return]

    async def ingest(self, ev: EventIn) -> EventResult:
        """Record one event or identify and re-score the person's lead (see the module doc)."""
        ruleset = self.rules.current
        now = self.now()
        types = ruleset.engagement_events
        half_life = ruleset.engagement.half_life_ms if ruleset.engagement else \
            DEFAULT_HALF_LIFE_MS
        rec: Recorded | None = None
        read: LeadRead | None = None
        for _ in range(3):  # an identify may move an alias between our read and our write
            if ev.kind == "identify":
                rec = await self._identify(ev, now, types, half_life)
            else:
                person, expect, link = await self._resolve(ev)
                hint = (link, None) if link else self._lead_of.get(person)
                rec, read = await self.state.record(
                    person, event=ev.event or "", at=ev.timestamp or now, now=now,
                    message_id=ev.message_id, types=types, half_life_ms=half_life,
                    expect=expect, link=link,
                    read_lead=hint[0] if hint and (ev.event or "") in types else None,
                    account_domain=hint[1] if hint and ruleset.uses_account_owner else None)
            if rec.state.lead:
                _remember(self._lead_of, rec.state.person, (rec.state.lead, rec.state.dom))
            if rec.status != "moved":
                break
        if rec is None or rec.status == "moved":
            raise StateError("the person's identity kept changing; retry the event")
        if rec.status != "ok":
            metrics.EVENTS.labels(rec.status).inc()  # e.g. duplicate messageId
            return EventResult(status=rec.status, event=ev.event, seq=rec.state.seq)
        metrics.EVENTS.labels("identified" if ev.kind == "identify" else "stored").inc()
        outcome = None
        relevant = ev.kind == "identify" or (ev.event or "") in types
        if rec.state.lead and relevant:
            outcome = await self.rescore(
                rec.state.lead, rec.state, now,
                read=read if read is not None and read.lead_id == rec.state.lead else None)
        return EventResult(status="identified" if ev.kind == "identify" else "recorded",
                           event=ev.event, seq=rec.state.seq,
                           merged=rec.merged if ev.kind == "identify" else None, lead=outcome)

    async def _lead_person(self, lead_id: str) -> tuple[str, str]:
        person = self._person_of.get(lead_id)
        if person is None:
            exists, email, _ = await self.state.lead_email(lead_id)
            if not exists:
                raise UnknownLead(f"no lead {lead_id!r} (it may have expired)")
            person = email_person(email) if email else lead_person(lead_id)
            _remember(self._person_of, lead_id, person)
        return person, lead_id

    async def _external(self, external_id: str, source: str | None) -> str | None:
        """The lead of an external id. Leads claim ``ext:<channel>:<lead source>``
        (router/services/leads.py): try the API channel and every configured intake source."""
        if source:
            scopes = [f"ext:{source}:{source}", f"ext:api:{source}", f"ext:{source}:"]
        else:
            scopes = ["ext:api:"]
            intake = getattr(self.rules.current, "intake", None)
            for name in sorted({s.source for s in getattr(intake, "sources", {}).values()}):
                scopes += [f"ext:{name}:{name}", f"ext:{name}:"]
        return await self.state.lead_by_external_id(list(dict.fromkeys(scopes)), external_id)

    async def _resolve(self, ev: EventIn) -> tuple[str, dict[str, str | None], str | None]:
        """(person, the aliases it was resolved through → their values, lead to link)."""
        if ev.email:
            return email_person(ev.email), {}, None
        if ev.lead_id:
            person, link = await self._lead_person(ev.lead_id)
            return person, {}, link
        if ev.external_id:
            lead_id = await self._external(ev.external_id, ev.source)
            if lead_id:
                person, link = await self._lead_person(lead_id)
                return person, {}, link
            if not (ev.user_id or ev.anonymous_id):
                raise UnknownLead(f"no lead with external_id {ev.external_id!r}")
        aliases = self._aliases(ev)
        if not aliases:
            raise ValueError("an event needs email, lead_id, external_id, userId or anonymousId")
        found = await self.state.resolve(aliases)
        expect = dict(zip(aliases, found, strict=True))
        person = next((p for p in found if p), aliases[0])
        return person, expect, None

    @staticmethod
    def _aliases(ev: EventIn) -> list[str]:
        out = []
        if ev.user_id:
            out.append(alias_id("u", ev.user_id))
        if ev.anonymous_id:
            out.append(alias_id("a", ev.anonymous_id))
        return out

    async def _identify(self, ev: EventIn, now: dt.datetime, types: Sequence[str],
                        half_life: int) -> Recorded:
        aliases = self._aliases(ev)
        found = await self.state.resolve(aliases) if aliases else []
        current = dict(zip(aliases, found, strict=True))
        link = None
        if ev.email:
            target = email_person(ev.email)
        elif ev.lead_id:
            target, link = await self._lead_person(ev.lead_id)
        else:
            target = next((p for p in found if p), aliases[0] if aliases else "")
            if not target:
                raise ValueError("identify needs traits.email, userId or anonymousId")
        sources = {a: v for a, v in current.items() if a != target}
        return await self.state.identify(target, now=now, sources=sources,
                                         traits=ev.traits or None, message_id=ev.message_id,
                                         types=types, half_life_ms=half_life, link=link)

    # -- re-scoring ----------------------------------------------------------------------------

    async def rescore(self, lead_id: str, person: PersonState, now: dt.datetime, *,
                      read: LeadRead | None = None) -> LeadOutcome:
        """Re-evaluate ``lead_id`` with ``person``'s engagement and apply it (see
        lua/requalify.lua). Retries while the lead moves under it (accepted, reassigned...).
        ``read``: the lead as just read, if the caller has it (saves a round trip)."""
        ruleset = self.rules.current
        for _ in range(5):
            if read is None:
                read = await self.state.read_lead(
                    lead_id, person.dom if ruleset.uses_account_owner else None)
            if read is None:
                return LeadOutcome(lead_id=lead_id, outcome="gone")
            plan, ev, before = await self.plan(ruleset, read, person, now)
            result = await self.state.requalify(plan)
            if result.status == "changed":
                read = None
                continue
            if result.status == "requalified" and result.due_at is not None and ev.sla_policy:
                metrics.SLA_STARTED.labels(ev.sla_policy).inc()
            outcome = {"requalified": "requalified", "rescored": "rescored",
                       "unchanged": "unchanged", "stale": "superseded",
                       "not_found": "gone"}[result.status]
            return LeadOutcome(
                lead_id=lead_id, outcome=outcome, status=ev.status,
                previous_status=plan.entry["data"]["from"],
                score=ev.score.total, previous_score=before.score.total, state=result.state,
                owner=result.owner, pool=result.pool, queue=result.queue,
                due_at=result.due_at)
        raise StateError(f"lead {lead_id} kept changing while it was re-scored; retry")

    async def lead_score(self, person: PersonState, now: dt.datetime) -> Score | None:
        """The score ``person``'s lead gets now: the re-score's own decision, applied nowhere
        (``GET /v1/engagement`` shows it); None when the person has no lead."""
        ruleset = self.rules.current
        read = None if person.lead is None else await self.state.read_lead(
            person.lead, person.dom if ruleset.uses_account_owner else None)
        return None if read is None else (await self.plan(ruleset, read, person, now))[1].score

    async def plan(self, ruleset: Ruleset, read: LeadRead, person: PersonState,
                   now: dt.datetime, *, lead: Lead | None = None,
                   notes: tuple[Step, ...] = ()) -> tuple[Requalify, Evaluation, Record]:
        """Decide the stored lead again with ``person``'s engagement and traits, and plan what
        lua/requalify.lua applies. ``lead``: new data for it (an ``external_id`` update,
        router/services/updates.py, with its enrichment ``notes``), decided instead."""
        record = decode_record(read.decision)
        base = record.lead if lead is None else lead
        owner = read.account_owner
        if ruleset.uses_account_owner:  # traits may have moved the lead to another company
            lead = apply_traits(base, person.traits, person.traits_at, record.created_at)
            domain = derived(lead, Snapshot(), now)["company_domain"]
            if domain != (read.account_domain or None):
                owner = await self.state.account_owner(domain) if domain else None
        snapshot = snapshot_of(person, now=now, account_owner=owner, lead_at=record.created_at)
        decided = await decide(base, snapshot, ruleset, evaluator=self.rules.evaluator(ruleset),
                               plugins=self.plugins, notes=notes)
        ev = decided.evaluation
        stored_status = read.status or record.status
        current = "nurture" if read.state == "recycled" else stored_status
        mode = _mode(read, record, ev, current, stored_status)
        if mode == "seq" and base is not record.lead:
            mode = "rescore"  # new data is stored even when the decision stays
        new = msgspec.structs.replace(
            record, lead=decided.lead, status=ev.status, score=ev.score, territory=ev.territory,
            segment=ev.segment, matched=ev.matched, explanation=decided.explanation,
            rules_version=ruleset.version)
        if mode in ("rescore", "keep"):  # the lead stays where it is: so does its explanation
            new = msgspec.structs.replace(new, explanation=_kept_route(new.explanation, record))
        route: dict[str, Any] = {}
        if mode in ("route", "keep"):
            route = _route_fields(decided)  # as a new lead's commit would go
            if mode == "route":
                new = msgspec.structs.replace(
                    new, route_kind=ev.route.kind, route_rule=ev.route.rule,
                    route_reason=ev.route.reason, sla_policy=ev.sla_policy)
        causes = [{"event": c.event, "at": from_ms(c.at).isoformat().replace("+00:00", "Z"),
                   **({"message_id": c.message_id} if c.message_id else {})}
                  for c in person.recent if c.seq > read.eng_seq]
        data: dict[str, Any] = {"from": current, "to": ev.status, "score": ev.score.total,
                                "from_score": record.score.total,
                                "engagement": ev.score.engagement, "events": causes,
                                "rules_version": ruleset.version}
        entry = {"event": "requalified" if mode in ("route", "keep") else "rescored",
                 "data": data}
        plan = Requalify(lead_id=read.lead_id, now=now, seq=person.seq, mode=mode,
                         status=ev.status, decision=encode(new), expect_owner=read.owner,
                         expect_state=read.state, expect_queue=read.queue,
                         expect_status=stored_status, entry=entry, **route)
        return plan, ev, record


Mode = Literal["seq", "rescore", "keep", "route"]


def _mode(read: LeadRead, record: Record, ev: Evaluation, current: str,
          stored_status: str) -> Mode:
    """What lua/requalify.lua does: a rise in status routes the lead (``route``) unless a rep
    is working it (``keep``); otherwise it records the new score (``rescore``) or just the
    sequence number when nothing changed (``seq``)."""
    if RANK.get(ev.status, 1) > RANK.get(current, 1):
        return "keep" if read.owner and read.state in _WORKING else "route"
    same = (ev.status == stored_status and ev.score.total == record.score.total
            and ev.matched == record.matched)
    return "seq" if same else "rescore"


def _kept_route(steps: tuple[Step, ...], before: Record) -> tuple[Step, ...]:
    """``steps`` with the assignment step of ``before``, the decision that put the lead where it
    still is, noting where the new evaluation would have sent a new lead."""
    old = next((s for s in before.explanation if s.stage == "assignment"), None)
    new = next((s for s in steps if s.stage == "assignment"), None)
    if old is None or new is None or old == new:
        return steps
    note = f"kept when re-scored (a new lead would now go to {new.outcome})"
    kept = msgspec.structs.replace(old, detail=f"{old.detail}; {note}" if old.detail else note)
    return tuple(kept if s is new else s for s in steps)


def _route_fields(plan: DecisionPlan) -> dict[str, Any]:
    """The :class:`Requalify` routing fields of ``plan``."""
    ev, where = plan.evaluation, plan.routing
    return {"kind": where.kind, "target": where.owner, "owner_day": where.owner_day,
            "reason": where.reason, "rule": where.rule, "sla_policy": ev.sla_policy,
            "queue": where.queue, "chain": where.chain, "due_at": plan.due_at,
            "due_by_rep": plan.due_by_rep}


_CACHE_MAX = 100_000


def _remember(cache: dict[str, Any], key: str, value: Any) -> None:
    if len(cache) >= _CACHE_MAX and key not in cache:
        cache.clear()  # a hint cache: starting over costs one round trip per person
    cache[key] = value
