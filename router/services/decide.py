"""Deciding one lead: the one place that does it.

:func:`decide` takes a lead (already enriched by the caller), a :class:`DecisionSnapshot` of
everything the decision depends on (the time, the account owner, the person's engagement and
traits), the ruleset, its evaluator and the plugin host, and returns a :class:`DecisionPlan`:
the evaluation, the explanation, the lead as decided, where it should go and its SLA.

Live routing (router/services/leads.py), engagement re-qualification
(router/services/engagement.py), the ``POST /v1/rules/evaluate`` dry run (:func:`dry_run`) and
``leadrouter rules explain`` all call it, so the four can never disagree. Without plugin
``score`` / ``route`` hooks it runs :func:`decide_now`, the same steps synchronously. The
replay (router/services/replay.py, ``_Run._quick``) runs those steps itself — ``_prepared``,
the evaluator, ``_as_spam``, ``_routing`` and, only for a lead whose outcome changed,
``_planned`` — so a change to these steps must keep it in step
(tests/services/test_replay_fastpath.py compares the two paths).

It does no I/O and reads no clock: the same lead, snapshot and rules give the same plan, byte
for byte (``msgspec.json.encode``) — the snapshot is a msgspec struct, so a decision can be
stored and replayed. Plugin hooks run (they are the caller's choice of host); without a host
the decision is the engine's alone.

What it does *not* do is pick the rep: availability (away, out of office), daily caps and the
round-robin position change with every lead, so the commit script
(router/state/lua/commit.lua, or requalify.lua for a re-scored lead) picks atomically among
the plan's candidate chain (:attr:`RoutingIntent.chain`) when it writes the lead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from leadrouter_sdk import Lead, Step, lead_from_mapping

from router.engine.availability import PlanCache, PoolPlan, local_day
from router.engine.backend import Evaluator
from router.engine.cases import CaseState, snapshot_for
from router.engine.engagement import Activity, windows
from router.engine.evaluate import Evaluation, Snapshot
from router.engine.evaluate import explain as _explain
from router.engine.ruleset import Route, Ruleset, SlaSpec
from router.engine.sla_clock import deadline

if TYPE_CHECKING:
    from router.plugins.host import PluginHost

__all__ = [
    "DecisionPlan",
    "DecisionSnapshot",
    "PersonFacts",
    "RoutingIntent",
    "apply_traits",
    "case_snapshot",
    "decide",
    "decide_now",
    "dry_run",
    "engine_snapshot",
    "explain_plan",
]


# --- what the decision reads -------------------------------------------------------------------


class PersonFacts(msgspec.Struct, frozen=True, kw_only=True):
    """The person behind the lead's email, as read: the activity its ``count()``, ``last()``
    and decaying engagement points are computed from, and the traits an ``identify`` left."""

    activity: Activity = Activity()
    traits: dict[str, Any] | None = None
    traits_at: dt.datetime | None = None


class DecisionSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Everything :func:`decide` reads besides the lead and the rules (serialisable: a stored
    snapshot decides the same again). ``person`` is None when nothing was read (no email, or
    engagement off). ``lead_at``: when the lead itself was decided — on re-scoring, traits
    newer than the lead override its fields; without it (a new lead) traits only fill gaps."""

    now: dt.datetime
    account_owner: str | None = None
    person: PersonFacts | None = None
    lead_at: dt.datetime | None = None


# --- what it decides ---------------------------------------------------------------------------


class RoutingIntent(msgspec.Struct, frozen=True, kw_only=True):
    """Where the lead should go; the commit script picks the rep. ``kind`` is the route kind:
    for ``pool`` ``chain`` holds the pool and its overflow pools in order and ``queue`` the
    queue ending the chain; for ``queue`` ``queue`` is the target; for ``owner`` /
    ``account_owner`` ``owner`` is the rep and ``owner_day`` its local day (its daily cap)."""

    kind: str
    rule: str | None = None
    reason: str = ""
    chain: tuple[PoolPlan, ...] = ()
    queue: str = "unassigned"
    owner: str | None = None
    owner_day: str | None = None


class DecisionPlan(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`decide` answers: the service's internal plan for a lead, not the public
    :class:`leadrouter_sdk.Decision` (which adds the id, the picked rep and the history once
    the lead is committed). ``due_by_rep`` overrides ``due_at`` for the rep who gets a pool
    lead (business-hours SLAs depend on whose hours count)."""

    lead: Lead  # as decided: enriched by the caller, with the person's traits
    evaluation: Evaluation  # score with contributions, status, territory, segment, matched
    explanation: tuple[Step, ...]  # rendered once: stored and answered
    routing: RoutingIntent
    sla_policy: str | None = None
    due_at: dt.datetime | None = None
    due_by_rep: dict[str, dt.datetime] = {}


# --- the decision ------------------------------------------------------------------------------


async def decide(lead: Lead, snapshot: DecisionSnapshot, ruleset: Ruleset, *,
                 evaluator: Evaluator, plugins: PluginHost | None = None,
                 notes: tuple[Step, ...] = (), spam: str | None = None,
                 env: Mapping[str, Any] | None = None, explain: bool = True) -> DecisionPlan:
    """Decide ``lead`` on ``snapshot`` with ``ruleset`` (see the module doc).

    ``notes``: the caller's enrichment steps (they lead the plugin steps in the explanation).
    ``spam``: why the intake judged the lead automated — it is scored but never routed
    (``bad_lead``, the ``spam`` queue, no SLA). ``env``: ``derived()`` of ``lead`` if the
    caller has it already (a memo: it is dropped when traits change the lead).

    ``explain=False`` (the replay, which explains only the leads whose outcome changed): the
    plan's ``explanation`` holds only the caller's and plugins' steps (the full one is
    ``explain_plan(ruleset, plan)``), and ``due_at`` / ``due_by_rep`` are left empty (no SLA
    deadlines computed); everything else is the same.

    The rep is not picked here: availability, caps and the round-robin position are read and
    changed atomically by the commit script, which picks among ``routing.chain``."""
    if plugins is None or not (plugins.has("score") or plugins.has("route")):
        # No hook could change the evaluation: the engine's alone, without a coroutine hop.
        return decide_now(lead, snapshot, ruleset, evaluator=evaluator, notes=notes, spam=spam,
                          explain=explain)
    given = lead
    lead, snap = _prepared(lead, snapshot, ruleset)
    if lead is not given:
        env = None  # derived() of the lead before its traits
    ev, notes = await plugins.evaluate(ruleset, lead, snap, now=snapshot.now, notes=notes,
                                       evaluator=evaluator, env=env)
    return _planned(ruleset, lead, ev, snapshot.now, notes, spam, explain)


def decide_now(lead: Lead, snapshot: DecisionSnapshot, ruleset: Ruleset, *,
               evaluator: Evaluator, notes: tuple[Step, ...] = (), spam: str | None = None,
               explain: bool = True) -> DecisionPlan:
    """:func:`decide` without plugin score/route hooks, synchronously (the same steps: it is
    what ``decide()`` runs then; the replay runs the same steps itself, see the module doc)."""
    lead, snap = _prepared(lead, snapshot, ruleset)
    ev = evaluator(lead, snap, now=snapshot.now)
    return _planned(ruleset, lead, ev, snapshot.now, notes, spam, explain)


def _prepared(lead: Lead, snapshot: DecisionSnapshot, ruleset: Ruleset) -> tuple[Lead, Snapshot]:
    """The lead with the person's traits, and the engine's snapshot."""
    person = snapshot.person
    if person is not None:
        lead = apply_traits(lead, person.traits, person.traits_at, snapshot.lead_at)
    return lead, engine_snapshot(ruleset, snapshot)


def _planned(ruleset: Ruleset, lead: Lead, ev: Evaluation, now: dt.datetime,
             notes: tuple[Step, ...], spam: str | None, explain: bool) -> DecisionPlan:
    if spam is not None:
        ev, notes = _as_spam(ev, spam), (*notes, Step(stage="intake", outcome="bad_lead",
                                                       detail=spam))
    if not explain:
        return DecisionPlan(lead=lead, evaluation=ev, explanation=notes, sla_policy=ev.sla_policy,
                            routing=_routing(ruleset, ev, now, deadlines=False)[0])
    explanation = _explain(ruleset, ev) + notes
    routing, due_at, due_by_rep = _routing(ruleset, ev, now)
    return DecisionPlan(lead=lead, evaluation=ev, explanation=explanation, routing=routing,
                        sla_policy=ev.sla_policy, due_at=due_at, due_by_rep=due_by_rep)


def explain_plan(ruleset: Ruleset, plan: DecisionPlan) -> tuple[Step, ...]:
    """The full explanation of a plan decided with ``explain=False`` (byte-identical to the one
    ``decide()`` gives by default)."""
    return _explain(ruleset, plan.evaluation) + plan.explanation


def engine_snapshot(ruleset: Ruleset, snapshot: DecisionSnapshot) -> Snapshot:
    """The engine's view of ``snapshot``: the ``count()`` / ``last()`` values the rules ask
    for, and the activity the decaying points are computed from."""
    person = snapshot.person
    if person is None:
        return Snapshot(account_owner=snapshot.account_owner)
    counts, last = windows(person.activity, ruleset.windows, ruleset.last_events, snapshot.now)
    return Snapshot(account_owner=snapshot.account_owner, counts=counts, last=last,
                    activity=person.activity)


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


def _as_spam(ev: Evaluation, reason: str) -> Evaluation:
    """Spam is scored but never routed: bad_lead, the ``spam`` queue, no SLA."""
    _, t, s, _, _ = ev.decided
    return msgspec.structs.replace(
        ev, status="bad_lead", sla_policy=None, decided=(-1, t, s, -1, -1),
        route=Route(kind="queue", target="spam", rule=None, reason=reason))


# --- routing intent and SLA --------------------------------------------------------------------

# The pools' per-minute plans (router/engine/availability.py), per ruleset object. A pure memo:
# the same (ruleset, pool, minute) always gives the same plan. A few slots: live routing and
# re-scoring share the current ruleset; a reload brings a new one.
_PLAN_CACHES: list[PlanCache] = []
_PLAN_SLOTS = 4


def _plans(ruleset: Ruleset) -> PlanCache:
    for cache in _PLAN_CACHES:
        if cache.ruleset is ruleset:
            return cache
    cache = PlanCache(ruleset)
    _PLAN_CACHES.insert(0, cache)
    del _PLAN_CACHES[_PLAN_SLOTS:]
    return cache


def _routing(ruleset: Ruleset, ev: Evaluation, now: dt.datetime, *, deadlines: bool = True
             ) -> tuple[RoutingIntent, dt.datetime | None, dict[str, dt.datetime]]:
    """Where the commit script sends the lead, its SLA deadline and, for business-hours SLAs
    of pool leads, each candidate rep's deadline (``deadlines=False``: neither)."""
    route = ev.route
    policy = ruleset.sla_policies.get(ev.sla_policy or "") if deadlines else None
    due_by_rep: dict[str, dt.datetime] = {}
    owner = None
    if route.kind == "pool" and route.target:
        chain, queue = _plans(ruleset).chain(route.target, now)
        intent = RoutingIntent(kind=route.kind, rule=route.rule, reason=route.reason,
                               chain=chain, queue=queue)
        if policy is not None and policy.clock == "business":
            due_by_rep = _due_by_rep(policy, ruleset, chain, now)
    elif route.kind in ("owner", "account_owner") and route.target:
        owner = ruleset.reps.get(route.target)
        intent = RoutingIntent(kind=route.kind, rule=route.rule, reason=route.reason,
                               owner=route.target, owner_day=local_day(owner, now))
    else:
        intent = RoutingIntent(kind=route.kind, rule=route.rule, reason=route.reason,
                               queue=route.target or "unassigned")
    due = deadline(policy, owner, ruleset.holidays, now) if policy is not None else None
    return intent, due, due_by_rep


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


# --- dry runs ----------------------------------------------------------------------------------


def case_snapshot(state: CaseState, now: dt.datetime) -> DecisionSnapshot:
    """The snapshot of a dry run or rule test state (``{account_owner, events: [{event,
    days_ago}]}``): the events as the activity a person with them would have stored (the
    engine's reading of "N days ago", router/engine/cases.py)."""
    activity = snapshot_for(state, frozenset(), now).activity
    return DecisionSnapshot(now=now, account_owner=state.account_owner,
                            person=None if activity is None else PersonFacts(activity=activity))


async def dry_run(lead: Lead, state: CaseState, now: dt.datetime, ruleset: Ruleset, *,
                  evaluator: Evaluator, plugins: PluginHost | None = None) -> DecisionPlan:
    """What routing would decide for ``lead`` in ``state`` at ``now``, nothing written: the
    same enrich → :func:`decide` path as a real lead (plugins included)."""
    notes: tuple[Step, ...] = ()
    if plugins is not None and plugins.has("enrich"):
        lead, enriched = await plugins.enrich(lead)
        notes = tuple(enriched)
    return await decide(lead, case_snapshot(state, now), ruleset, evaluator=evaluator,
                        plugins=plugins, notes=notes)
