"""Routing one lead end to end: claim, read, decide, pick-and-commit. One or two Redis round
trips.

1. ``store.prefetch``: one pipeline claims the idempotency keys (``Idempotency-Key`` header and
   ``external_id``) and reads what the rules need (the account owner of the company domain,
   the person's engagement) — or, for a lead without claims, guesses them (optimistic reads:
   no round trip; the commit checks the guess and, if it was stale, writes nothing and returns
   what it found, and the lead is decided again on that);
2. :func:`router.services.decide.decide` decides status, routing intent and SLA on a snapshot
   of what was read (no I/O);
3. ``store.commit``: one Lua script picks the rep (strategy, caps, availability, overflow) and
   writes decision, history, outbox event, SLA deadline and the idempotency records together —
   there is never an acknowledged lead without a stored decision.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, NamedTuple

import msgspec
from leadrouter_sdk import Assignment, Decision, Lead, Sla, Step
from leadrouter_sdk import HistoryEntry as PublicHistory

from router.engine.evaluate import Evaluation, Snapshot, derived
from router.engine.ruleset import Ruleset
from router.intake.config import IntakeConfig
from router.intake.policy import DEFAULT as DEFAULT_POLICY
from router.observability import metrics
from router.observability.ids import random_hex
from router.observability.logs import REQUEST
from router.plugins.host import PluginHost
from router.services.decide import DecisionPlan, DecisionSnapshot, decide
from router.services.decision_input import DecisionInput, committed_of, encode_input
from router.services.records import Record, encode, from_stored
from router.services.rules import RulesManager
from router.services.snapshots import person_read, prefetched_person, snapshot_of
from router.settings import Settings
from router.state.engagement import EngagementLimits
from router.state.erasure import person_hash
from router.state.models import (
    AssignResult,
    Claim,
    ClaimRequest,
    CommitPlan,
    EngagementLink,
    Prefetched,
)
from router.state.store import Store

__all__ = ["AfterCommit", "LeadService", "Outcome", "new_lead_id"]

# mismatch: an Idempotency-Key reused with other data; changed: an external_id already routed,
# sent again with other data (with intake.yaml `leads: {external_id_repeat: reject}`);
# updated: such a repeat stored as new data of the lead (`external_id_repeat: update`).
Outcome = Literal["created", "duplicate", "conflict", "mismatch", "changed", "updated"]
Answer = tuple[Outcome, Decision | None, str]

# Re-scores a lead whose person's events arrived between its prefetch and its commit
# (EngagementService.after_commit, passed in by the app: this module never imports it).
AfterCommit = Callable[[str, EngagementLink], Awaitable[object]]
# Stores new data of a lead and decides it again (router/services/updates.py update_lead, given
# by the app): (lead id, lead, enrichment steps) → lua/requalify.lua's status.
UpdateLead = Callable[[str, Lead, tuple[Step, ...]], Awaitable[str]]


def new_lead_id() -> str:
    """Time-ordered, unguessable: 12 hex digits of milliseconds + 24 random hex digits.

    The id is what lets a caller read a lead and act on it as its owner, so it carries 96
    random bits (the time part is guessable)."""
    return f"ld_{time.time_ns() // 1_000_000:012x}{random_hex()}"


_perf = time.perf_counter
_OUTCOMES = {name: metrics.LEAD_OUTCOMES.labels(name)
             for name in ("created", "duplicate", "conflict", "mismatch", "updated")}
_STAGES = {name: metrics.STAGE_DURATION.labels(name)
           for name in ("prefetch", "evaluate", "commit")}
_GUESSES = {name: metrics.OPTIMISTIC_READS.labels(name) for name in ("right", "stale")}
_NO_STATE = Snapshot()


class _Request(NamedTuple):
    """One lead being routed: what every attempt at deciding it shares."""

    ruleset: Ruleset  # one ruleset for the whole request, even across reloads
    lead: Lead  # enriched
    notes: tuple[Step, ...]  # the enrichment steps
    env: dict[str, Any] | None  # derived() of ``lead``, if the read needed it
    now: dt.datetime
    email: str | None
    person: str | None  # person_hash(email): the erasure index and engagement key
    lead_id: str
    source: str
    spam: str | None


class _Decided(NamedTuple):
    plan: DecisionPlan
    link: EngagementLink | None
    commit: CommitPlan


class LeadService:
    # Shadow mode (ShadowService.submit, set by the app): each committed lead's stored
    # decision input and live plan; it must not raise or wait.
    shadow: Callable[[bytes, DecisionPlan], None] | None = None

    def __init__(self, *, store: Store, rules: RulesManager, settings: Settings,
                 clock: Callable[[], dt.datetime], plugins: PluginHost | None = None,
                 engagement: EngagementLimits | None = None,
                 rescore: AfterCommit | None = None, update: UpdateLead | None = None) -> None:
        """``engagement``: read the person's engagement and traits with each lead (its limits
        give the link's lifetime); ``rescore``: called when events arrived meanwhile."""
        self.store = store
        self.rules = rules
        self.settings = settings
        self.now = clock
        self.plugins = plugins  # enrich/score/route/on_decision hooks (router/plugins/host.py)
        self.engagement = engagement
        self.rescore = rescore
        self.update = update  # `external_id_repeat: update` (none: such repeats are refused)

    async def route(self, lead: Lead, *, body: bytes = b"", source: str = "api",
                    idempotency_key: str | None = None, spam: str | None = None,
                    repeat: str | None = None) -> Answer:
        """Route ``lead``; returns (outcome, decision, lead id or message). ``spam`` (why the
        intake judged it automated) makes it a ``bad_lead`` in the ``spam`` queue, unrouted.
        Idempotency fingerprints the decoded ``lead``; ``body`` only matches records written
        before that. ``repeat``: the channel's ``external_id_repeat`` (default: ``leads:``)."""
        ruleset = self.rules.current
        now = self.now()
        lead_id = new_lead_id()
        sent = lead  # as the sender sent it: what idempotency fingerprints
        plugins = self.plugins
        notes: tuple[Step, ...] = ()
        if plugins is not None and plugins.has("enrich"):
            lead, enriched = await plugins.enrich(lead)
            notes = tuple(enriched)
        email = lead.email
        person = person_hash(email) if email else None
        claims = _claims(lead, sent, source, idempotency_key, lead_id, body)
        engagement = self.engagement  # its read joins the same pipeline
        # The names the rules derive from the lead (domains...): computed once here and reused
        # while the lead stays the same object (engagement traits may replace it).
        env = derived(lead, _NO_STATE, now) \
            if ruleset.uses_account_owner or engagement is not None else None
        domain = env["company_domain"] if env is not None and ruleset.uses_account_owner \
            else None
        metrics.LEADS_RECEIVED.labels(source).inc()
        t0 = _perf()
        read = person_read(lead, ruleset, person=person) if engagement is not None else None
        pre: Prefetched = await self.store.prefetch(
            claims, account_domain=domain, extra=(read,) if read else (),
            optimistic=self.settings.optimistic_reads)
        blocking = pre.blocking
        if blocking is not None:
            return await self._blocked(pre, blocking, _repeat(ruleset, repeat), lead, notes)
        req = _Request(ruleset, lead, notes, env, now, email, person, lead_id, source, spam)
        d, result, t1, t2 = await self._decide_and_commit(req, pre)
        if result.status in ("duplicate", "in_flight") and result.other_lead:
            return await self._existing(result.status, result.other_lead)
        if result.engagement_stale and self.rescore is not None and d.link is not None:
            await self.rescore(lead_id, d.link)  # events came in meanwhile
        ev = d.plan.evaluation
        _count_created(ev, result, t0, t1, t2)
        if self.shadow is not None:  # queued: evaluated off the request's path
            self.shadow(d.commit.input, d.plan)
        request = REQUEST.get()
        if request is not None:  # for the request's log line (batches: the last lead)
            request.lead_id = lead_id
            request.rules_version = ruleset.version
        decision = _decision(ruleset, ev, lead_id, now, result,
                             explanation=d.plan.explanation)
        if plugins is not None and plugins.has("on_decision"):
            await plugins.on_decision(d.plan.lead, decision)
        return "created", decision, lead_id

    async def _decide_and_commit(self, req: _Request, pre: Prefetched
                                 ) -> tuple[_Decided, AssignResult, float, float]:
        """Decide on what ``pre`` holds and commit; if the commit found the guessed reads
        stale (nothing written), decide again on what it found. Returns the times the
        evaluation started and ended, for the stage metrics."""
        t1 = _perf()
        try:
            while True:
                d = await self._decide(req, pre)
                t2 = _perf()
                result = await self.store.commit(d.commit)
                if pre.guards:
                    _GUESSES["stale" if result.status == "stale" else "right"].inc()
                if result.status != "stale":
                    return d, result, t1, t2
                # No guards on the re-read, so this runs at most twice. For the stage metrics
                # the stale attempt was the read.
                pre = pre.reread(result.reads)
                t1 = _perf()
        except BaseException:
            await self.store.release(pre.owned_claims)
            raise

    async def _decide(self, req: _Request, pre: Prefetched) -> _Decided:
        """Decide the lead on what ``pre`` holds and plan its commit (no I/O but plugins)."""
        ruleset, now = req.ruleset, req.now
        limits = self.engagement
        found = prefetched_person(pre) if limits is not None else None
        snapshot = snapshot_of(found, now=now, account_owner=pre.account_owner)
        plan = await decide(req.lead, snapshot,
                            ruleset, evaluator=self.rules.evaluator(ruleset),
                            plugins=self.plugins, notes=req.notes, spam=req.spam, env=req.env)
        lead = plan.lead  # with the person's traits
        link = None
        if found is not None and limits is not None:
            env = req.env if lead is req.lead and req.env is not None \
                else derived(lead, _NO_STATE, now)
            link = EngagementLink(person=found.person, seq=found.seq,
                                  dom=env["company_domain"] or "", ttl_ms=limits.ttl_ms)
        person = req.person
        if lead.email != req.email:  # never in practice: traits and plugins keep the email
            person = person_hash(lead.email) if lead.email else None
        return _Decided(plan, link, _commit_plan(req, plan, pre, person, link, snapshot,
                                                 self.settings.list_indexes))

    async def _blocked(self, pre: Prefetched, blocking: Claim, repeat: str, lead: Lead,
                       notes: tuple[Step, ...]) -> Answer:
        """A claim stops routing: answer with what holds it. Other data under a known key is
        a mismatch: always for an Idempotency-Key; for an external_id, ``repeat`` says:
        ``reject``, ``duplicate`` (the first decision) or ``update`` (router/services/
        updates.py; then the claims point at the new data: repeating it is a duplicate)."""
        mismatch = blocking.state == "mismatch"
        if mismatch and repeat == "update" and self.update is not None \
                and blocking.scope.startswith("ext:") \
                and all(c is blocking or c.owned for c in pre.claims):
            try:
                answer = await self._update(pre, blocking, self.update, lead, notes)
            except BaseException:
                await self.store.release(pre.owned_claims)
                raise
            if answer is not None:
                return answer
        await self.store.release(pre.owned_claims)
        if mismatch:
            if blocking.scope.startswith("key:"):
                _OUTCOMES["mismatch"].inc()
                return "mismatch", None, blocking.lead_id
            if repeat != "duplicate":
                _OUTCOMES["mismatch"].inc()
                return "changed", None, blocking.lead_id
        return await self._existing(blocking.state, blocking.lead_id)

    async def _update(self, pre: Prefetched, blocking: Claim, update: UpdateLead, lead: Lead,
                      notes: tuple[Step, ...]) -> Answer | None:
        """Store ``lead`` as the lead ``blocking`` holds and decide it again; then the claims
        (the external_id's, an Idempotency-Key's) point at it with the new fingerprint. None
        when the lead has expired meanwhile."""
        lead_id = blocking.lead_id
        if await update(lead_id, lead, notes) == "not_found":
            return None
        await self.store.settle([blocking, *pre.owned_claims], lead_id)
        decision = await self.get(lead_id)
        if decision is None:
            return None
        _OUTCOMES["updated"].inc()
        return "updated", msgspec.structs.replace(decision, updated=True), lead_id

    async def _existing(self, state: str, lead_id: str) -> Answer:
        """Another request has the lead: still in flight (conflict) or done (its decision)."""
        if state == "in_flight":
            _OUTCOMES["conflict"].inc()
            return "conflict", None, lead_id
        _OUTCOMES["duplicate"].inc()
        return "duplicate", await self.get(lead_id, duplicate=True), lead_id

    async def get(self, lead_id: str, *, duplicate: bool = False) -> Decision | None:
        stored = await self.store.get_lead(lead_id)
        return None if stored is None else from_stored(stored, duplicate=duplicate)


_canonical = msgspec.json.Encoder(order="sorted").encode


def _repeat(ruleset: Ruleset, repeat: str | None) -> str:
    if repeat is not None:
        return repeat
    intake = ruleset.intake
    return (intake.leads if isinstance(intake, IntakeConfig) else DEFAULT_POLICY) \
        .external_id_repeat


def _claims(lead: Lead, sent: Lead, source: str, idempotency_key: str | None,
            lead_id: str, body: bytes = b"") -> list[ClaimRequest]:
    """The idempotency claims of a lead: its ``Idempotency-Key`` and its external id."""
    claims: list[ClaimRequest] = []
    if not (idempotency_key or lead.external_id):
        return claims
    # The hash of the lead as sent (``sent``, decoded: key order, spacing and number spelling
    # do not count) tells a retry from a reused key or a changed lead. ``v2:`` marks it: an
    # unmarked record was written before, as sha256 of the raw body (``legacy``).
    fingerprint = "v2:" + hashlib.sha256(_canonical(sent)).hexdigest()
    legacy = hashlib.sha256(body).hexdigest() if body else ""
    if idempotency_key:
        claims.append(ClaimRequest(scope=f"key:{source}", key=idempotency_key,
                                   fingerprint=fingerprint, lead_id=lead_id, legacy=legacy))
    if lead.external_id:
        # An external id is only unique within the system that issued it: the intake
        # channel and the lead's own `source` (two CRMs may both send id 42).
        claims.append(ClaimRequest(scope=f"ext:{source}:{lead.source or ''}",
                                   key=lead.external_id, fingerprint=fingerprint,
                                   lead_id=lead_id, legacy=legacy))
    return claims


def _commit_plan(req: _Request, plan: DecisionPlan, pre: Prefetched, person: str | None,
                 link: EngagementLink | None, snapshot: DecisionSnapshot,
                 lists: bool = True) -> CommitPlan:
    """What the commit script writes. ``person``: :func:`person_hash` of the lead's email;
    ``snapshot``: what decide() read (kept with the input, for the replay)."""
    ev = plan.evaluation
    route = ev.route
    where = plan.routing
    record = Record(lead=plan.lead, status=ev.status, score=ev.score, territory=ev.territory,
                    segment=ev.segment, route_kind=route.kind, route_rule=route.rule,
                    route_reason=route.reason, sla_policy=ev.sla_policy,
                    rules_version=req.ruleset.version, created_at=req.now, matched=ev.matched,
                    explanation=plan.explanation, source=req.source)
    return CommitPlan(lead_id=req.lead_id, now=req.now, kind=route.kind,
                      decision=encode(record), reason=route.reason, rule=route.rule,
                      sla_policy=ev.sla_policy, claims=pre.owned_claims, person=person,
                      guards=pre.guards, chain=where.chain, queue=where.queue,
                      owner=where.owner, owner_day=where.owner_day, due_at=plan.due_at,
                      due_by_rep=plan.due_by_rep, engagement=link,
                      lists=(ev.status, ev.territory or "", ev.segment or "",
                             ev.score.grade or "", req.lead.external_id or "") if lists else (),
                      funnel=_funnel_groups(req, ev),
                      input=encode_input(DecisionInput(
                          req.lead, snapshot, req.notes, req.spam, req.source,
                          req.ruleset.version, committed_of(ev))))


def _funnel_groups(req: _Request, ev: Evaluation) -> tuple[str, ...]:
    """The lead's funnel groups (router/state/funnel.py); the pick fills pool and owner."""
    return tuple(g or "(none)" for g in (ev.segment, ev.territory, req.lead.source or req.source,
                                          "", "",
                                          ev.score.grade, ev.status, ev.route.rule))


def _count_created(ev: Evaluation, result: AssignResult, t0: float, t1: float,
                   t2: float) -> None:
    """The metrics of a committed lead: stage times, outcome, decision, assignment."""
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


def _decision(ruleset: Ruleset, ev: Evaluation, lead_id: str, now: dt.datetime,
              result: AssignResult, *, explanation: tuple[Step, ...]) -> Decision:
    """The public decision of a lead just committed."""
    owner, pool, queue = result.owner, result.pool, result.queue
    due_at = result.due_at
    return Decision(
        lead_id=lead_id, status=ev.status, score=ev.score, territory=ev.territory,
        segment=ev.segment,
        assignment=Assignment(owner=owner, pool=pool, queue=queue, rule=ev.route.rule,
                              strategy=result.strategy,
                              reason=result.reason or ev.route.reason),
        sla=Sla(policy=ev.sla_policy, due_at=due_at, state="pending" if due_at else None),
        rules_version=ruleset.version, created_at=now, matched=ev.matched,
        explanation=explanation,
        history=(PublicHistory(at=now, event="created"),
                 PublicHistory(at=now, event=result.status, detail={
                     k: v for k, v in (("owner", owner), ("pool", pool), ("queue", queue))
                     if v})))
