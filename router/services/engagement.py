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

A new lead reads its person in the prefetch pipeline (:meth:`EngagementService.read_for`, no
extra round trip); the commit links the person to it and reports events that slipped in between
(then :meth:`EngagementService.after_commit` re-scores it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import msgspec
from leadrouter_sdk import Lead, Step, lead_from_mapping

from router.engine.engagement import DEFAULT_HALF_LIFE_MS, Activity, from_ms, windows
from router.engine.evaluate import Evaluation, Snapshot, derived, explain
from router.engine.ruleset import Ruleset
from router.engine.schema import STATUSES
from router.observability import metrics
from router.services.leads import LeadService, Record
from router.services.rules import RulesManager
from router.state.engagement import (
    EngagementStore,
    LeadRead,
    PersonRead,
    PersonState,
    Recorded,
    Requalify,
    alias_id,
    email_person,
    lead_person,
)
from router.state.errors import StateError
from router.state.models import EngagementLink, Prefetched

__all__ = [
    "EngagementService",
    "EventIn",
    "EventResult",
    "LeadOutcome",
    "UnknownLead",
    "apply_traits",
    "event_from_payload",
    "traits_to_fields",
]

log = logging.getLogger("leadrouter.engagement")

RANK = {status: i for i, status in enumerate(STATUSES)}
_WORKING = ("assigned", "accepted", "contacted")  # a rep has the lead
_decode_record = msgspec.json.Decoder(Record).decode
_encode = msgspec.json.Encoder().encode


class UnknownLead(LookupError):
    """The event names a lead (lead_id / external_id) that does not exist (any more)."""


class EventIn(msgspec.Struct, frozen=True, kw_only=True):
    """One event, whatever shape it arrived in (router/api/events.py translates)."""

    kind: Literal["track", "identify"] = "track"
    event: str | None = None
    email: str | None = None
    lead_id: str | None = None
    external_id: str | None = None
    source: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    timestamp: dt.datetime | None = None
    message_id: str | None = None
    traits: dict[str, Any] = {}  # identify: lead fields (see traits_to_fields)

    @property
    def identity(self) -> str:
        """Events with the same identity keep their order inside a batch."""
        return (self.email or self.lead_id or self.external_id or self.user_id
                or self.anonymous_id or "")


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


# --- traits ------------------------------------------------------------------------------------

_TRAITS: dict[str, str] = {
    "firstname": "first_name", "lastname": "last_name", "title": "title", "jobtitle": "title",
    "phone": "phone", "company": "company", "companyname": "company", "website": "domain",
    "domain": "domain", "employees": "employees", "employeecount": "employees",
    "numberofemployees": "employees", "annualrevenue": "annual_revenue",
    "revenue": "annual_revenue", "industry": "industry", "country": "country",
    "state": "state", "region": "state", "city": "city", "postalcode": "postal_code",
    "zip": "postal_code", "budget": "budget", "authority": "authority", "need": "need",
    "timelinedays": "timeline_days", "description": "description",
}
_NESTED = {"company": {"name": "company", "employeecount": "employees",
                       "employees": "employees", "industry": "industry", "website": "domain",
                       "domain": "domain"},
           "address": {"country": "country", "state": "state", "region": "state",
                       "city": "city", "postalcode": "postal_code"}}


def _flat(key: str) -> str:
    return key.replace("_", "").replace("-", "").replace(" ", "").lower()


def traits_to_fields(traits: Mapping[str, Any]) -> dict[str, Any]:
    """Segment-style traits (``firstName``, ``company: {name, employee_count}``, ``address``...)
    as normalized lead fields; the email (the identity) and unknown traits are left out.
    Raises ``msgspec.ValidationError`` (``$.field``) for values a lead would refuse."""
    out: dict[str, Any] = {}
    for key, value in traits.items():
        k = _flat(str(key))
        if k in _NESTED and isinstance(value, Mapping):
            for sub, v in value.items():
                field = _NESTED[k].get(_flat(str(sub)))
                if field and v is not None:
                    out.setdefault(field, v)
        elif k == "name" and isinstance(value, str) and value.strip():
            first, _, last = value.strip().partition(" ")
            out.setdefault("first_name", first)
            if last:
                out.setdefault("last_name", last.strip())
        elif k in _TRAITS and value is not None and not isinstance(value, Mapping | list):
            out[_TRAITS[k]] = value
    if not out:
        return {}
    lead = lead_from_mapping(out)
    return {k: v for k, v in msgspec.to_builtins(lead).items()
            if k in out and v is not None}


def apply_traits(lead: Lead, traits: Mapping[str, Any] | None, traits_at: dt.datetime | None,
                 lead_at: dt.datetime | None) -> Lead:
    """``lead`` with the identified traits: they override its fields when they are not older
    than the lead (``lead_at``), else they only fill fields it lacks."""
    if not traits:
        return lead
    fields = msgspec.to_builtins(lead)
    newer = traits_at is not None and lead_at is not None and traits_at >= lead_at
    merged = {**fields, **traits} if newer else {**traits, **fields}
    if merged == fields:
        return lead
    try:
        return lead_from_mapping(merged)
    except msgspec.ValidationError:  # stored traits were valid alone; keep the lead as it is
        return lead


# --- the service -------------------------------------------------------------------------------


class EngagementService:
    def __init__(self, *, state: EngagementStore, rules: RulesManager, leads: LeadService,
                 clock: Callable[[], dt.datetime]) -> None:
        self.state = state
        self.rules = rules
        self.leads = leads
        self.now = clock
        # lead id → its person (a lead's email never changes); person → (its lead, domain), a
        # hint only: the event script returns the real link, read in the same round trip.
        self._person_of: dict[str, str] = {}
        self._lead_of: dict[str, tuple[str, str | None]] = {}

    # -- the lead hot path (router/services/leads.py)
    # ---------------------------------------------------

    def read_for(self, lead: Lead, ruleset: Ruleset, *,
                 person: str | None = None) -> PersonRead | None:
        """The prefetch read of the lead's person (None without an email). ``person``: the
        email's ``person_hash`` if the caller has it already."""
        if not lead.email:
            return None
        key = "e:" + person if person is not None else email_person(lead.email)
        return PersonRead(key, ruleset.engagement_events)

    def apply(self, pre: Prefetched, lead: Lead, ruleset: Ruleset, now: dt.datetime, *,
              env: Mapping[str, Any] | None = None
              ) -> tuple[Lead, Snapshot, EngagementLink | None]:
        """The lead with its person's traits, the snapshot with its engagement and the link
        for the commit, from what :meth:`read_for` prefetched. ``env``: ``derived()`` of
        ``lead`` if the caller has it already."""
        person = next((x for x in pre.extra if isinstance(x, PersonState)), None)
        if person is None:
            return lead, Snapshot(account_owner=pre.account_owner), None
        given = lead
        lead = apply_traits(lead, person.traits, person.traits_at, None)
        snapshot = snapshot_of(ruleset, person.activity, now, pre.account_owner)
        if env is None or lead is not given:
            env = derived(lead, Snapshot(), now)
        dom = env["company_domain"] or ""
        return lead, snapshot, EngagementLink(person=person.person, seq=person.seq, dom=dom,
                                              ttl_ms=self.state.limits.ttl_ms)

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
            plan, ev, before = await self._plan(ruleset, read, person, now)
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

    async def _plan(self, ruleset: Ruleset, read: LeadRead, person: PersonState,
                    now: dt.datetime) -> tuple[Requalify, Evaluation, Record]:
        record = _decode_record(read.decision)
        lead = apply_traits(record.lead, person.traits, person.traits_at, record.created_at)
        owner = read.account_owner
        if ruleset.uses_account_owner:
            domain = derived(lead, Snapshot(), now)["company_domain"]
            if domain != (read.account_domain or None):
                owner = await self.state.account_owner(domain) if domain else None
        snapshot = snapshot_of(ruleset, person.activity, now, owner)
        plugins = self.leads.plugins
        notes: tuple[Step, ...] = ()
        if plugins is None:
            ev = self.rules.evaluator(ruleset)(lead, snapshot, now=now)
        else:
            ev, notes = await plugins.evaluate(ruleset, lead, snapshot, now=now,
                                               evaluator=self.rules.evaluator(ruleset))
        stored_status = read.status or record.status
        current = "nurture" if read.state == "recycled" else stored_status
        rise = RANK.get(ev.status, 1) > RANK.get(current, 1)
        mode: Literal["seq", "rescore", "keep", "route"]
        if not rise:
            same = (ev.status == stored_status and ev.score.total == record.score.total
                    and ev.matched == record.matched)
            mode = "seq" if same else "rescore"
        elif read.owner and read.state in _WORKING:
            mode = "keep"
        else:
            mode = "route"
        new = msgspec.structs.replace(
            record, lead=lead, status=ev.status, score=ev.score, territory=ev.territory,
            segment=ev.segment, matched=ev.matched, explanation=explain(ruleset, ev) + notes,
            rules_version=ruleset.version)
        route: dict[str, Any] = {}
        if mode in ("route", "keep"):
            where = self.leads.routing(ruleset, ev, now)  # as a new lead's commit would go
            route = {"kind": ev.route.kind, "target": where.get("owner"),
                     "owner_day": where.get("owner_day"), "reason": ev.route.reason,
                     "rule": ev.route.rule, "sla_policy": ev.sla_policy,
                     "queue": where.get("queue", "unassigned"), "chain": where.get("chain", ()),
                     "due_at": where["due_at"], "due_by_rep": where.get("due_by_rep", {})}
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
                         status=ev.status, decision=_encode(new), expect_owner=read.owner,
                         expect_state=read.state, expect_queue=read.queue,
                         expect_status=stored_status, entry=entry, **route)
        return plan, ev, record


_CACHE_MAX = 100_000


def _remember(cache: dict[str, Any], key: str, value: Any) -> None:
    if len(cache) >= _CACHE_MAX and key not in cache:
        cache.clear()  # a hint cache: starting over costs one round trip per person
    cache[key] = value


def snapshot_of(ruleset: Ruleset, activity: Activity, now: dt.datetime,
                account_owner: str | None) -> Snapshot:
    """The engine's snapshot of a person: count()/last() values and the activity the decaying
    points are computed from (router/engine/engagement.py)."""
    counts, last = windows(activity, ruleset.windows, ruleset.last_events, now)
    return Snapshot(account_owner=account_owner, counts=counts, last=last, activity=activity)


# --- payload shapes ------------------------------------------------------------------------------

_MAX_EVENT = 128
_MAX_ID = 200


def _bad(path: str, message: str) -> msgspec.ValidationError:
    return msgspec.ValidationError(f"{message} - at `{path}`")


def _text(doc: Mapping[str, Any], keys: Sequence[str], path: str, *, limit: int = _MAX_ID,
          numbers: bool = False) -> str | None:
    for key in keys:
        value = doc.get(key)
        if value is None:
            continue
        if numbers and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise _bad(f"{path}.{key}", "Expected a string")
        value = value.strip()
        if not value:
            continue
        if len(value) > limit or not value.isprintable():
            raise _bad(f"{path}.{key}", f"Expected at most {limit} printable characters")
        return value
    return None


def _email(value: str, path: str) -> str:
    try:
        email = lead_from_mapping({"email": value}).email
    except msgspec.ValidationError:
        raise _bad(path, "Expected an email address") from None
    if not email:
        raise _bad(path, "Expected an email address")
    return email


def _timestamp(doc: Mapping[str, Any], path: str) -> dt.datetime | None:
    for key in ("timestamp", "originalTimestamp"):
        value = doc.get(key)
        if value is None:
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000 if abs(value) > 1e11 else value  # epoch ms or s
            try:
                return dt.datetime.fromtimestamp(seconds, dt.UTC)
            except (OverflowError, OSError, ValueError):
                raise _bad(f"{path}.{key}", "Expected a time") from None
        if not isinstance(value, str):
            raise _bad(f"{path}.{key}", "Expected an ISO 8601 time or epoch milliseconds")
        try:
            when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise _bad(f"{path}.{key}", "Expected an ISO 8601 time such as "
                       "2024-05-01T12:00:00Z") from None
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return None


def event_from_payload(doc: Any, path: str = "$") -> EventIn:
    """One event in any of the accepted shapes (see docs): Segment ``track`` / ``identify``, or
    the plain ``{email | lead_id | external_id, event, timestamp, properties, messageId}``.
    Raises ``msgspec.ValidationError`` naming the field (``$.event``)."""
    if not isinstance(doc, Mapping):
        raise _bad(path, "Expected an event object")
    kind = doc.get("type", "track")
    if kind not in ("track", "identify"):
        raise _bad(f"{path}.type", f"Expected `track` or `identify`, got {str(kind)[:40]!r}")
    context = doc.get("context")
    if context is not None and not isinstance(context, Mapping):
        raise _bad(f"{path}.context", "Expected an object")
    props = doc.get("properties")
    if props is not None and not isinstance(props, Mapping):
        raise _bad(f"{path}.properties", "Expected an object")
    traits = doc.get("traits")
    if traits is None and kind == "identify" and isinstance(context, Mapping):
        traits = context.get("traits")
    if traits is not None and not isinstance(traits, Mapping):
        raise _bad(f"{path}.traits", "Expected an object")
    ctx_traits = context.get("traits") if isinstance(context, Mapping) else None
    user = _text(doc, ("userId", "user_id"), path, numbers=True)
    anon = _text(doc, ("anonymousId", "anonymous_id"), path, numbers=True)
    email_raw = _text(doc, ("email",), path, limit=320)
    email_path = f"{path}.email"
    for where, source in (("traits", traits), ("context.traits", ctx_traits),
                          ("properties", props)):
        if email_raw is None and isinstance(source, Mapping):
            email_raw = _text(source, ("email",), f"{path}.{where}", limit=320)
            email_path = f"{path}.{where}.email"
    if email_raw is None and user and "@" in user:
        email_raw, email_path = user, f"{path}.userId"
    email = _email(email_raw, email_path) if email_raw else None
    event = None
    fields: dict[str, Any] = {}
    if kind == "track":
        event = _text(doc, ("event",), path, limit=_MAX_EVENT)
        if event is None:
            raise _bad(f"{path}.event", "Expected the event name (1 to 128 characters)")
    elif traits:
        try:
            fields = traits_to_fields(traits)
        except msgspec.ValidationError as exc:
            text = str(exc).replace("- at `$", f"- at `{path}.traits", 1)
            raise msgspec.ValidationError(text) from None
    lead_id = _text(doc, ("lead_id", "leadId"), path, limit=64)
    external_id = _text(doc, ("external_id", "externalId"), path, limit=256, numbers=True)
    if not (email or lead_id or external_id or user or anon):
        raise _bad(path, "Expected who did it: email, lead_id, external_id, userId or "
                   "anonymousId")
    return EventIn(kind=kind, event=event, email=email, lead_id=lead_id,
                   external_id=external_id, source=_text(doc, ("source",), path, limit=100),
                   user_id=user, anonymous_id=anon, timestamp=_timestamp(doc, path),
                   message_id=_text(doc, ("messageId", "message_id"), path), traits=fields)
