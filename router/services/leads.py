"""Routing one lead end to end: claim, read, evaluate, pick-and-commit. One or two Redis round
trips.

1. ``store.prefetch``: one pipeline claims the idempotency keys (``Idempotency-Key`` header and
   ``external_id``) and reads what the rules need (the account owner of the company domain,
   the person's engagement) — or, for a lead without claims, guesses them (optimistic reads:
   no round trip; the commit checks the guess and, if it was stale, writes nothing and returns
   what it found, and the lead is decided again on that);
2. the pure engine decides status, route and SLA policy;
3. ``store.commit``: one Lua script picks the rep (strategy, caps, availability, overflow) and
   writes decision, history, outbox event, SLA deadline and the idempotency records together —
   there is never an acknowledged lead without a stored decision.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import msgspec
from leadrouter_sdk import Assignment, Decision, Lead, Score, Sla, Step
from leadrouter_sdk import HistoryEntry as PublicHistory

from router.engine.availability import PlanCache, PoolPlan, local_day
from router.engine.evaluate import Evaluation, Snapshot, derived, explain
from router.engine.ruleset import Route, Ruleset, SlaSpec
from router.engine.sla_clock import deadline
from router.observability import metrics
from router.observability.ids import random_hex
from router.observability.logs import REQUEST
from router.plugins.host import PluginHost
from router.services.rules import RulesManager
from router.settings import Settings
from router.state.erasure import person_hash
from router.state.models import (
    ClaimRequest,
    CommitPlan,
    EngagementLink,
    Prefetched,
    StoredLead,
)
from router.state.store import Store

if TYPE_CHECKING:
    from router.services.engagement import EngagementService

__all__ = ["LeadService", "Outcome", "Record", "new_lead_id"]

Outcome = Literal["created", "duplicate", "conflict", "mismatch"]


def new_lead_id() -> str:
    """Time-ordered, unguessable: 12 hex digits of milliseconds + 24 random hex digits.

    The id is what lets a caller read a lead and act on it as its owner, so it carries 96
    random bits (the time part is guessable)."""
    return f"ld_{time.time_ns() // 1_000_000:012x}{random_hex()}"


class Record(msgspec.Struct, kw_only=True):
    """What is stored with a lead at commit (the live owner/SLA fields live beside it)."""

    lead: Lead
    status: str
    score: Score
    territory: str | None
    segment: str | None
    route_kind: str
    route_rule: str | None
    route_reason: str
    sla_policy: str | None
    rules_version: str
    created_at: dt.datetime
    matched: tuple[str, ...]
    explanation: tuple[Step, ...]
    source: str | None = None


_encode = msgspec.json.Encoder().encode
_perf = time.perf_counter
_OUTCOMES = {name: metrics.LEAD_OUTCOMES.labels(name)
             for name in ("created", "duplicate", "conflict", "mismatch")}
_STAGES = {name: metrics.STAGE_DURATION.labels(name)
           for name in ("prefetch", "evaluate", "commit")}
_GUESSES = {name: metrics.OPTIMISTIC_READS.labels(name) for name in ("right", "stale")}
_decode_record = msgspec.json.Decoder(Record).decode
_NO_STATE = Snapshot()


class _Decided(NamedTuple):
    lead: Lead  # with the person's traits
    ev: Evaluation
    explanation: tuple[Step, ...]
    link: EngagementLink | None
    plan: CommitPlan


class LeadService:
    def __init__(self, *, store: Store, rules: RulesManager, settings: Settings,
                 clock: Callable[[], dt.datetime], plugins: PluginHost | None = None) -> None:
        self.store = store
        self.rules = rules
        self.settings = settings
        self.now = clock
        self.plugins = plugins  # enrich/score/route/on_decision hooks (router/plugins/host.py)
        self._plan_cache: PlanCache | None = None
        # The person's engagement and traits (router/services/engagement.py), set by the app.
        self.engagement: EngagementService | None = None

    def _plans(self, ruleset: Ruleset) -> PlanCache:
        cache = self._plan_cache
        if cache is None or cache.ruleset is not ruleset:
            cache = self._plan_cache = PlanCache(ruleset)
        return cache

    async def route(self, lead: Lead, *, body: bytes, source: str = "api",
                    idempotency_key: str | None = None,
                    spam: str | None = None) -> tuple[Outcome, Decision | None, str]:
        """Route ``lead``; returns (outcome, decision, lead id or message). ``spam`` (why the
        intake judged it automated) makes it a ``bad_lead`` in the ``spam`` queue, unrouted."""
        ruleset = self.rules.current  # one ruleset for the whole request, even across reloads
        now = self.now()
        lead_id = new_lead_id()
        plugins = self.plugins
        notes: tuple[Step, ...] = ()
        if plugins is not None and plugins.has("enrich"):
            lead, enriched = await plugins.enrich(lead)
            notes = tuple(enriched)
        email = lead.email
        person = person_hash(email) if email else None  # the erasure index and engagement key
        claims = []
        # The body's hash tells a retry from a reused key; only claims need it.
        fingerprint = hashlib.sha256(body).hexdigest() \
            if idempotency_key or lead.external_id else ""
        if idempotency_key:
            claims.append(ClaimRequest(scope=f"key:{source}", key=idempotency_key,
                                       fingerprint=fingerprint, lead_id=lead_id))
        if lead.external_id:
            # An external id is only unique within the system that issued it: the intake
            # channel and the lead's own `source` (two CRMs may both send id 42).
            claims.append(ClaimRequest(scope=f"ext:{source}:{lead.source or ''}",
                                       key=lead.external_id,
                                       fingerprint=fingerprint, lead_id=lead_id))
        engagement = self.engagement  # its read joins the same pipeline
        # The names the rules derive from the lead (domains...): computed once here and reused
        # while the lead stays the same object (engagement traits or plugins may replace it).
        env = derived(lead, _NO_STATE, now) \
            if ruleset.uses_account_owner or engagement is not None else None
        domain = env["company_domain"] if env is not None and ruleset.uses_account_owner \
            else None
        metrics.LEADS_RECEIVED.labels(source).inc()
        t0 = _perf()
        read = engagement.read_for(lead, ruleset, person=person) \
            if engagement is not None else None
        pre: Prefetched = await self.store.prefetch(
            claims, account_domain=domain, extra=(read,) if read else (),
            optimistic=self.settings.optimistic_reads)
        t1 = _perf()
        blocking = pre.blocking
        if blocking is not None:
            await self.store.release(pre.owned_claims)
            if blocking.state == "mismatch" and blocking.scope.startswith("key:"):
                _OUTCOMES["mismatch"].inc()
                return "mismatch", None, blocking.lead_id
            if blocking.state == "in_flight":
                _OUTCOMES["conflict"].inc()
                return "conflict", None, blocking.lead_id
            _OUTCOMES["duplicate"].inc()
            return "duplicate", await self.get(blocking.lead_id, duplicate=True), \
                blocking.lead_id
        try:
            while True:
                d = await self._decide(ruleset, lead, pre, env, now, notes, spam, email, person,
                                       lead_id, source)
                t2 = _perf()
                result = await self.store.commit(d.plan)
                if pre.guards:
                    _GUESSES["stale" if result.status == "stale" else "right"].inc()
                if result.status != "stale":
                    break
                # The guessed reads were wrong and nothing was written: decide again on what
                # the commit found (no guards now, so this runs at most twice). For the stage
                # metrics the stale attempt was the read.
                pre = pre.reread(result.reads)
                t1 = _perf()
        except BaseException:
            await self.store.release(pre.owned_claims)
            raise
        lead, ev, explanation, link = d.lead, d.ev, d.explanation, d.link
        if result.status in ("duplicate", "in_flight") and result.other_lead:
            if result.status == "in_flight":
                _OUTCOMES["conflict"].inc()
                return "conflict", None, result.other_lead
            _OUTCOMES["duplicate"].inc()
            return "duplicate", await self.get(result.other_lead, duplicate=True), \
                result.other_lead
        if result.engagement_stale and engagement is not None and link is not None:
            await engagement.after_commit(lead_id, link)  # events came in meanwhile
        _STAGES["prefetch"].observe(t1 - t0)
        _STAGES["evaluate"].observe(t2 - t1)
        _STAGES["commit"].observe(_perf() - t2)
        _OUTCOMES["created"].inc()
        metrics.DECISIONS.labels(ev.status, ev.score.grade or "", result.pool or "",
                                 result.queue or "", ev.route.rule or "").inc()
        if result.owner:
            metrics.ASSIGNMENTS.labels(result.pool or "", result.owner).inc()
        metrics.SCORES.observe(ev.score.total)
        if result.due_at is not None and ev.sla_policy:
            metrics.SLA_STARTED.labels(ev.sla_policy).inc()
        request = REQUEST.get()
        if request is not None:  # for the request's log line (batches: the last lead)
            request.lead_id = lead_id
            request.rules_version = ruleset.version
        decision = _decision(ruleset, ev, lead_id, now, result.owner, result.pool,
                             result.queue, result.strategy, result.reason, result.due_at,
                             state=result.status, explanation=explanation)
        if plugins is not None and plugins.has("on_decision"):
            await plugins.on_decision(lead, decision)
        return "created", decision, lead_id

    async def _decide(self, ruleset: Ruleset, lead: Lead, pre: Prefetched,
                      env: dict[str, Any] | None, now: dt.datetime, notes: tuple[Step, ...],
                      spam: str | None, email: str | None, person: str | None, lead_id: str,
                      source: str) -> _Decided:
        """Evaluate ``lead`` on what ``pre`` holds and plan its commit (no I/O but plugins)."""
        link = None
        engagement = self.engagement
        if engagement is None:
            snapshot = Snapshot(account_owner=pre.account_owner)
        else:  # the person's traits, engagement counts and decaying points
            before = lead
            lead, snapshot, link = engagement.apply(pre, lead, ruleset, now, env=env)
            if lead is not before:
                env = None
        evaluator = self.rules.evaluator(ruleset)  # the configured engine
        plugins = self.plugins
        if plugins is None:
            ev = evaluator(lead, snapshot, now=now)
        else:  # score hooks → engine → route hooks, each isolated
            ev, notes = await plugins.evaluate(ruleset, lead, snapshot, now=now, notes=notes,
                                               evaluator=evaluator, env=env)
        if spam is not None:
            ev, notes = _as_spam(ev, spam), (*notes, Step(stage="intake", outcome="bad_lead",
                                                           detail=spam))
        explanation = explain(ruleset, ev) + notes  # rendered once: stored and answered
        if lead.email != email:  # never in practice: traits and plugins keep the email
            person = person_hash(lead.email) if lead.email else None
        plan = self._plan(ruleset, lead, ev, lead_id, now, source, pre, explanation, person)
        if link is not None:
            plan = msgspec.structs.replace(plan, engagement=link)
        return _Decided(lead, ev, explanation, link, plan)

    def _plan(self, ruleset: Ruleset, lead: Lead, ev: Evaluation, lead_id: str,
              now: dt.datetime, source: str, pre: Prefetched,
              explanation: tuple[Step, ...], person: str | None) -> CommitPlan:
        """``person``: :func:`person_hash` of the lead's email (None without one)."""
        route = ev.route
        record = Record(lead=lead, status=ev.status, score=ev.score, territory=ev.territory,
                        segment=ev.segment, route_kind=route.kind, route_rule=route.rule,
                        route_reason=route.reason, sla_policy=ev.sla_policy,
                        rules_version=ruleset.version, created_at=now, matched=ev.matched,
                        explanation=explanation, source=source)
        return CommitPlan(lead_id=lead_id, now=now, kind=route.kind, decision=_encode(record),
                          reason=route.reason, rule=route.rule, sla_policy=ev.sla_policy,
                          claims=pre.owned_claims, person=person, guards=pre.guards,
                          **self.routing(ruleset, ev, now))

    def routing(self, ruleset: Ruleset, ev: Evaluation, now: dt.datetime) -> dict[str, Any]:
        """Where the commit script sends the lead: the :class:`CommitPlan` fields ``chain``,
        ``queue``, ``owner``, ``owner_day``, ``due_at`` and ``due_by_rep`` (those that apply)."""
        route = ev.route
        policy = ruleset.sla_policies.get(ev.sla_policy or "")
        kw: dict[str, Any] = {}
        if route.kind == "pool" and route.target:
            chain, queue = self._plans(ruleset).chain(route.target, now)
            kw.update(chain=chain, queue=queue)
            if policy is not None and policy.clock == "business":
                kw["due_by_rep"] = _due_by_rep(policy, ruleset, chain, now)
        elif route.kind in ("owner", "account_owner") and route.target:
            rep = ruleset.reps.get(route.target)
            kw.update(owner=route.target, owner_day=local_day(rep, now))
        else:
            kw["queue"] = route.target or "unassigned"
        due = None
        if policy is not None:
            owner = ruleset.reps.get(kw.get("owner") or "")
            due = deadline(policy, owner, ruleset.holidays, now)
        kw["due_at"] = due
        return kw

    async def get(self, lead_id: str, *, duplicate: bool = False) -> Decision | None:
        stored = await self.store.get_lead(lead_id)
        return None if stored is None else from_stored(stored, duplicate=duplicate)


def _due_by_rep(policy: SlaSpec, ruleset: Ruleset, chain: tuple[PoolPlan, ...],
                now: dt.datetime) -> dict[str, dt.datetime]:
    """Each candidate rep's business-hours deadline (the pick happens later, in Redis); reps
    sharing a time zone and hours share one computation."""
    by_schedule: dict[tuple[str, Any], dt.datetime] = {}
    out: dict[str, dt.datetime] = {}
    for p in chain:
        for m in p.members:
            rep = ruleset.reps.get(m.rep)
            if rep is None:
                continue
            key = (rep.timezone, rep.hours)
            due = by_schedule.get(key)
            if due is None:
                due = by_schedule[key] = deadline(policy, rep, ruleset.holidays, now)
            out[m.rep] = due
    return out


def _as_spam(ev: Evaluation, reason: str) -> Evaluation:
    """Spam is scored but never routed: bad_lead, the ``spam`` queue, no SLA."""
    _, t, s, _, _ = ev.decided
    return msgspec.structs.replace(
        ev, status="bad_lead", sla_policy=None, decided=(-1, t, s, -1, -1),
        route=Route(kind="queue", target="spam", rule=None, reason=reason))


def _decision(ruleset: Ruleset, ev: Evaluation, lead_id: str, now: dt.datetime,
              owner: str | None, pool: str | None, queue: str | None, strategy: str | None,
              reason: str, due_at: dt.datetime | None, *, state: str,
              explanation: tuple[Step, ...]) -> Decision:
    return Decision(
        lead_id=lead_id, status=ev.status, score=ev.score, territory=ev.territory,
        segment=ev.segment,
        assignment=Assignment(owner=owner, pool=pool, queue=queue, rule=ev.route.rule,
                              strategy=strategy, reason=reason or ev.route.reason),
        sla=Sla(policy=ev.sla_policy, due_at=due_at, state="pending" if due_at else None),
        rules_version=ruleset.version, created_at=now, matched=ev.matched,
        explanation=explanation,
        history=(PublicHistory(at=now, event="created"),
                 PublicHistory(at=now, event=state, detail={
                     k: v for k, v in (("owner", owner), ("pool", pool), ("queue", queue))
                     if v})))


def from_stored(stored: StoredLead, *, duplicate: bool = False) -> Decision:
    """The public decision of a stored lead: the record plus its live fields and history."""
    record = _decode_record(stored.decision)
    # pending, met, late, breached, stopped (router/services/sla.py)
    sla_state = stored.sla_state or None
    if sla_state is None and stored.due_at is not None:
        sla_state = "pending" if stored.state in ("assigned", "queued") else stored.state
    history = tuple(
        PublicHistory(at=h.at, event=h.event, detail={
            k: v for k, v in msgspec.structs.asdict(h).items()
            if k not in ("at", "event", "data") and v is not None} | h.data)
        for h in stored.history)
    return Decision(
        lead_id=stored.lead_id, status=stored.status or record.status, score=record.score,
        territory=record.territory, segment=record.segment,
        assignment=Assignment(owner=stored.owner, pool=stored.pool, queue=stored.queue,
                              rule=stored.rule, strategy=stored.strategy,
                              reason=stored.reason or record.route_reason),
        sla=Sla(policy=stored.sla_policy, due_at=stored.due_at, state=sla_state),
        rules_version=record.rules_version, duplicate=duplicate,
        created_at=record.created_at, matched=record.matched,
        explanation=record.explanation, history=history)
