"""The what-if replay: stored leads decided again by (candidate) rules, in arrival order.

For each committed lead the commit kept what its decision was made from
(router/services/decision_input.py) and what its pool pick read (router/state/inputs.py).
:meth:`ReplayService.run` reads a window of them in arrival order (``leads:arrivals``, pages
of ``batch`` leads, one pipelined read of the lead hashes per page, a yield to the event loop
between pages; nothing is written), calls :func:`~router.services.decide.decide` on each
stored input and snapshot with the given rules, then simulates the pool pick
(router/services/_replay_pick.py) over the original availability facts, carrying the replay's
own pool state forward, and yields one :class:`ReplayedLead` per lead (``before``: the
decision as committed — the arrival's, even after engagement re-scoring or SLA reassignment
changed the lead since; ``after``: the replay's) or a :class:`Skip` saying why not.

Replaying with the rules version that decided the leads reproduces every stored decision
(tests/services/test_replay_determinism.py). For speed the stored inputs are decoded without
normalising the lead again (``decode_stored``) and decided with ``explain=False``: only the
leads whose outcome changed are explained (docs/BENCHMARKS.md, issue 17). Without plugin
score/route hooks each lead goes through :meth:`_Run._quick`: decide()'s own steps one by one,
the committed decision compared with the evaluation field by field (``_same``) and, when
nothing differs, one :class:`Outcome` for both sides — the plan and the second outcome are
built only for changed leads (tests/services/test_replay_fastpath.py: same items, same report).

Leads stored before the arrival index existed are indexed once per deployment
(:func:`backfill_at_start`, in the background at the service's start;
:meth:`ReplayService.prepare`, by the CLI and the API before a replay if that never finished):
the replay then counts them as skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from time import perf_counter

import msgspec
from leadrouter_sdk import Step

from router.engine.availability import PoolPlan, local_day, utc_day
from router.engine.backend import Evaluator, compiled_evaluator
from router.engine.evaluate import Evaluation
from router.engine.ruleset import Ruleset
from router.plugins.host import PluginHost
from router.services._backfill import run_later
from router.services._replay_pick import Picked, PickWorld
from router.services.decide import (
    DecisionPlan,
    RoutingIntent,
    _as_spam,  # decide()'s own steps, for the replay's hot loop (_Run._quick)
    _planned,
    _prepared,
    _routing,
    decide,
    explain_plan,
)
from router.services.decision_input import Committed, DecisionInput, decode_stored
from router.services.records import decode_record
from router.services.replay_model import Outcome, ReplayedLead, ReplayQuery, Skip
from router.state.inputs import (
    PickFacts,
    StoredInput,
    arrival_pages,
    complete_backfill,
    parse_pick,
    read_decisions,
    read_stored,
)
from router.state.models import from_ms, to_ms
from router.state.store import Store

__all__ = ["GONE", "NOT_GIVEN", "NO_INPUT", "UNREADABLE", "ReplayService",
           "backfill_at_start", "redecide"]

log = logging.getLogger("leadrouter.replay")

NO_INPUT = "stored before inputs were kept"
NOT_GIVEN = "rules version not given"
GONE = "expired"
UNREADABLE = "stored input unreadable"
_NO_FACTS = PickFacts(owner=None, pool=None, queue=None, pools=[])


async def redecide(stored: DecisionInput, ruleset: Ruleset, *, evaluator: Evaluator,
                   plugins: PluginHost | None = None, explain: bool = True) -> DecisionPlan:
    """:func:`decide` on what a lead's decision was made from (no pick)."""
    return await decide(stored.lead, stored.snapshot, ruleset, evaluator=evaluator,
                        plugins=plugins, notes=stored.notes, spam=stored.spam, explain=explain)


class ReplayService:
    """Replays stored traffic; built with the store, the plugin host and the evaluator
    factory live routing uses (``RulesManager.evaluator``)."""

    def __init__(self, store: Store, *, plugins: PluginHost | None = None,
                 evaluator: Callable[[Ruleset], Evaluator] | None = None,
                 batch: int = 500, slice_seconds: float | None = None) -> None:
        self.store = store
        self.plugins = plugins
        self.evaluator = evaluator or compiled_evaluator
        self.batch = batch
        # In a serving worker (the API, the console, the reload gate) live requests share the
        # event loop with the replay: it yields after ``slice_seconds`` of deciding (checked
        # every 8 leads), so a live request waits about that long at each of its awaits, not a
        # whole page (~12 ms for 500 leads). The CLI runs alone: None, no yield inside a page
        # (docs/BENCHMARKS.md, loadtests/replay_live.py).
        self.slice_seconds = slice_seconds

    async def prepare(self) -> int | None:
        """Index the leads stored before the arrival index (so :meth:`run` counts them as
        skipped) if that never finished on this store — normally the service did it at
        start-up (:func:`backfill_at_start`). The CLI and the API call it before :meth:`run`.
        Returns the leads added, None when it had finished already."""
        return await complete_backfill(self.store)

    async def run(self, rulesets: Ruleset | Mapping[str, Ruleset], query: ReplayQuery, *,
                  progress: Callable[[int], None] | None = None
                  ) -> AsyncIterator[ReplayedLead | Skip]:
        """Every lead of ``query``'s window, in arrival order: a :class:`ReplayedLead`, or a
        :class:`Skip`. ``rulesets``: one ruleset for every lead, or rules version → ruleset
        (each lead against its own version's; a lead of a version not given is skipped).
        ``progress``: called after each page with the number of leads read so far."""
        run = _Run(self, rulesets, query)
        read = 0
        async with contextlib.aclosing(arrival_pages(
                self.store, since_ms=_ms(query.since), until_ms=_ms(query.until),
                count=self.batch)) as pages:
            while not run.done:  # (a page is read only while the limit is not reached)
                page = await anext(pages, None)
                if page is None:
                    break
                items = await run.page(await read_stored(self.store, page))
                read += len(page)
                for item in items:
                    yield item
                if progress is not None:
                    progress(read)


async def backfill_at_start(store: Store, *, delay: float = 5.0, pause: float = 0.05,
                            count: int = 500) -> None:
    """The service's start-up run of the arrival backfill (router/app/application.py): after
    ``delay`` seconds, once per deployment (the marker), by one worker at a time (the lease),
    ``count`` keys a step with ``pause`` seconds between steps so live routing goes first;
    resumed from its cursor at the next start if stopped. A Redis error is logged, never
    raised: live routing does not depend on it."""
    await run_later(
        lambda: complete_backfill(store, count=count, pause=pause, exclusive=True),
        delay=delay, log=log, name="arrival index",
        resume="it resumes at the next start, or `leadrouter rules replay` completes it",
        done="older lead(s) indexed for replay")


def _ms(when: dt.datetime | None) -> int | None:
    return None if when is None else to_ms(when)


class _Run:
    """One replay's state: the simulated pick world, the evaluators, the limit."""

    def __init__(self, service: ReplayService, rulesets: Ruleset | Mapping[str, Ruleset],
                 query: ReplayQuery) -> None:
        self.service = service
        self.single = rulesets if isinstance(rulesets, Ruleset) else None
        self.by_version: Mapping[str, Ruleset] = {} if isinstance(rulesets, Ruleset) \
            else rulesets
        self.query = query
        self.world = PickWorld()
        self.evaluators: dict[int, Evaluator] = {}
        self.left = query.limit
        self._chain: tuple[PoolPlan, ...] = ()
        self._rep_days: dict[str, str] = {}
        self._day: tuple[float, float, str] = (0.0, 0.0, "")
        self._facts: dict[bytes, PickFacts] = {}  # no-pool pick facts by their bytes
        self.unfiltered = query.status is None and query.pool is None and query.territory is None
        self.done = self.left is not None and self.left <= 0

    def _evaluator(self, ruleset: Ruleset) -> Evaluator:
        found = self.evaluators.get(id(ruleset))
        if found is None:
            found = self.evaluators[id(ruleset)] = self.service.evaluator(ruleset)
        return found

    def _wanted(self, inp: DecisionInput, facts: PickFacts) -> bool:
        q = self.query
        return self.unfiltered or ((q.status is None or inp.committed.status == q.status)
                and (q.pool is None or facts.pool == q.pool)
                and (q.territory is None or inp.committed.territory == q.territory))

    async def page(self, stored: list[StoredInput]) -> list[ReplayedLead | Skip]:
        out: list[ReplayedLead | Skip] = []
        changed: list[int] = []
        plugins = self.service.plugins
        hooks = plugins is not None and (plugins.has("score") or plugins.has("route"))
        span = self.service.slice_seconds or 0.0
        until = perf_counter() + span if span else None
        for n, s in enumerate(stored, 1):
            if self.done:
                break
            if until is not None and not n & 7 and perf_counter() >= until:
                await asyncio.sleep(0)  # live requests on this worker go first (see __init__)
                until = perf_counter() + span
            opened = self._open(s)
            item: ReplayedLead | Skip | None
            if isinstance(opened, tuple):  # to decide again
                inp, facts, ruleset = opened
                evaluator = self._evaluator(ruleset)
                # No explanation and no SLA deadlines: only the changed leads are explained,
                # below. Without score/route hooks: decide_now()'s steps, inline (_quick).
                if hooks:
                    plan = await redecide(inp, ruleset, evaluator=evaluator, plugins=plugins,
                                          explain=False)
                    item = self._compared(s, inp, facts, ruleset, plan)
                else:
                    item = self._quick(s, inp, facts, ruleset, evaluator)
            else:
                item = opened
            if item is None:
                continue
            if isinstance(item, ReplayedLead) and item.before is not item.after:
                changed.append(len(out))  # (an unchanged lead has one Outcome for both)
            out.append(item)
            if self.left is not None:
                self.left -= 1
                self.done = self.left <= 0
        if changed:  # explanations of changed leads only: the stored ones, in one read
            raws = await read_decisions(self.service.store,
                                        [out[i].lead_id for i in changed])
            for i, raw in zip(changed, raws, strict=True):
                item = out[i]
                assert isinstance(item, ReplayedLead)
                before = item.before
                if raw is not None:
                    before = msgspec.structs.replace(
                        before, explanation=_explanation(raw))
                out[i] = msgspec.structs.replace(item, before=before)
        return out

    def _open(self, s: StoredInput
              ) -> Skip | tuple[DecisionInput, PickFacts, Ruleset] | None:
        """A stored lead: skipped (or not replayed: None), or what to decide it on."""
        if s.missing:
            return Skip(lead_id=s.lead_id, reason=GONE)
        if s.input is None:
            return Skip(lead_id=s.lead_id, reason=NO_INPUT)
        try:
            inp = decode_stored(s.input)  # written by the service: not normalised again
            facts = self._parsed(s.pick) if s.pick else _NO_FACTS
        except (msgspec.DecodeError, ValueError):  # a newer version's format, a damaged field
            return Skip(lead_id=s.lead_id, reason=UNREADABLE)
        single = self.single
        ruleset = single if single is not None else self.by_version.get(inp.rules_version)
        wanted = self.unfiltered or self._wanted(inp, facts)
        if ruleset is None or not wanted:
            # Not replayed, but it happened: the pick world takes it in as it was.
            self._as_committed(inp, facts, ruleset)
            return None if not wanted else Skip(lead_id=s.lead_id, reason=NOT_GIVEN)
        return inp, facts, ruleset

    def _parsed(self, raw: bytes) -> PickFacts:
        """``parse_pick(raw)``; the facts of a pick that tried no pool (most leads: a handful
        of distinct owner/pool/queue triples) are parsed once (never changed after)."""
        facts = self._facts.get(raw)
        if facts is None:
            facts = parse_pick(raw)
            if not facts.pools and len(self._facts) < 4096:
                self._facts[raw] = facts
        return facts

    def _quick(self, s: StoredInput, inp: DecisionInput, facts: PickFacts, ruleset: Ruleset,
               evaluator: Evaluator) -> ReplayedLead:
        """``_compared(..., decide_now(..., explain=False))`` with decide()'s own steps called
        one by one (router/services/decide.py): the plan is built only for a lead whose
        outcome changed (tests/services/test_replay_fastpath.py compares the two)."""
        snapshot = inp.snapshot
        now = snapshot.now
        lead, snap = _prepared(inp.lead, snapshot, ruleset)
        raw = ev = evaluator(lead, snap, now=now)
        spam = inp.spam
        if spam is not None:
            ev = _as_spam(ev, spam)
        routing = _routing(ruleset, ev, now, deadlines=False)[0]
        picked = self._pick(routing, facts, now)
        if _same(inp.committed, facts, ev, picked):
            before = _before(inp, facts)
            return ReplayedLead(lead_id=s.lead_id, created_at=from_ms(s.created_ms),
                                before=before, after=before, rules_version=inp.rules_version)
        plan = _planned(ruleset, lead, raw, now, inp.notes, spam, False)
        return self._outcomes(s, inp, facts, ruleset, plan, picked)

    def _compared(self, s: StoredInput, inp: DecisionInput, facts: PickFacts, ruleset: Ruleset,
                  plan: DecisionPlan) -> ReplayedLead:
        return self._outcomes(s, inp, facts, ruleset, plan,
                              self._pick(plan.routing, facts, inp.snapshot.now))

    def _outcomes(self, s: StoredInput, inp: DecisionInput, facts: PickFacts, ruleset: Ruleset,
                  plan: DecisionPlan, picked: Picked) -> ReplayedLead:
        before = _before(inp, facts)
        if _same(inp.committed, facts, plan.evaluation, picked):
            after = before  # the compact comparison first: one Outcome for both sides
        else:
            after = _after(plan, picked)
            if before != after:
                after = msgspec.structs.replace(after, explanation=explain_plan(ruleset, plan))
            else:  # equal after all (e.g. -0.0 and 0.0): shared, like any unchanged lead
                after = before
        return ReplayedLead(lead_id=s.lead_id, created_at=from_ms(s.created_ms),
                            before=before, after=after, rules_version=inp.rules_version)

    def _pick(self, routing: RoutingIntent, facts: PickFacts, now: dt.datetime) -> Picked:
        """The commit's pick, simulated on the world as the stored facts show it."""
        world = self.world
        if facts.pools:  # the original pick read some pools: take in what it saw
            chain = routing.chain
            if not chain:
                rep_days: dict[str, str] = {}
            elif chain is self._chain:  # the plan cache hands out one chain object a while
                rep_days = self._rep_days
            else:
                self._chain = chain
                rep_days = self._rep_days = {m.rep: m.day for p in chain for m in p.members}
            world.observe(facts, self._utc_day(now), rep_days)
        picked: Picked
        if routing.kind == "pool":
            picked = world.pick(routing.chain, routing.queue, to_ms(now))
        elif routing.kind in ("owner", "account_owner") and routing.owner:
            world.count(routing.owner, routing.owner_day or self._utc_day(now))
            picked = (routing.owner, None, None)
        else:
            picked = (None, None, routing.queue)
        if picked[0] != facts.owner or picked[1] != facts.pool:  # else settle() does nothing
            world.settle((facts.owner, facts.pool, facts.queue), picked)
        return picked

    def _utc_day(self, now: dt.datetime) -> str:
        """``utc_day(now)``, computed once a day (leads come in arrival order)."""
        ts = now.timestamp()
        lo, hi, day = self._day
        if not lo <= ts < hi:
            day = utc_day(now)
            lo = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp()
            self._day = (lo, lo + 86_400, day)
        return day

    def _as_committed(self, inp: DecisionInput, facts: PickFacts,
                      ruleset: Ruleset | None) -> None:
        """A lead not replayed (filtered out, version not given) still happened: the world
        takes its facts and its original assignment in."""
        now = inp.snapshot.now
        day = utc_day(now)
        rules = ruleset or self.single or next(iter(self.by_version.values()), None)
        reps = rules.reps if rules is not None else {}
        self.world.observe(facts, day, {m.rep: local_day(reps.get(m.rep), now)
                                        for p in facts.pools for m in p.members})
        if facts.owner:
            self.world.count(facts.owner, local_day(reps.get(facts.owner), now))
        if facts.pool:
            key = (facts.pool, day)
            self.world.pool_day[key] = self.world.pool_day.get(key, 0) + 1


def _same(c: Committed, facts: PickFacts, ev: Evaluation, picked: Picked) -> bool:
    """Whether ``_before`` and ``_after`` would be equal (compared field by field, without
    building them)."""
    return (c.status == ev.status and c.score == ev.score.total and c.grade == ev.score.grade
            and c.territory == ev.territory and c.segment == ev.segment
            and picked == (facts.owner, facts.pool, facts.queue)
            and c.sla_policy == ev.sla_policy and c.route_rule == ev.route.rule
            and c.matched == ev.matched)


def _before(inp: DecisionInput, facts: PickFacts) -> Outcome:
    c = inp.committed
    return Outcome(status=c.status, score=c.score, grade=c.grade, territory=c.territory,
                   segment=c.segment, pool=facts.pool, owner=facts.owner, queue=facts.queue,
                   sla_policy=c.sla_policy, route_rule=c.route_rule, matched=c.matched)


def _after(plan: DecisionPlan, picked: Picked) -> Outcome:
    ev = plan.evaluation
    owner, pool, queue = picked
    return Outcome(status=ev.status, score=ev.score.total, grade=ev.score.grade,
                   territory=ev.territory, segment=ev.segment, pool=pool, owner=owner,
                   queue=queue, sla_policy=ev.sla_policy, route_rule=ev.route.rule,
                   matched=ev.matched)


def _explanation(raw: bytes) -> tuple[Step, ...]:
    try:
        return decode_record(raw).explanation
    except msgspec.DecodeError:
        return ()
