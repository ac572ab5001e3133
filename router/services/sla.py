"""The marketing → sales handoff SLA: owner actions, breach escalation, the SLA report.

* **Owner actions** (``POST /v1/leads/{id}/accept`` · ``/contacted`` · ``/reject``): only the
  current owner's action counts; accept / contacted stop the clock; reject records the reason for
  marketing and recycles the lead to nurture, or reroutes it for ``wrong_territory``.
* **Breach worker** (:meth:`SlaService.run`, started in every service process): every
  ``sla_poll_seconds`` it claims a bounded batch of due deadlines in Redis and escalates each as
  its policy says (notify / reassign in the pool excluding earlier owners / another pool / a
  queue / nurture; after ``max_reassignments`` the ``final`` action). Claims are fenced, so a
  deadline is escalated exactly once however many processes run (``router/state/sla.py``), and
  deadlines live in Redis, so a restart loses none.
* **Report** (:meth:`SlaService.report`): per policy and per pool, from the SLA facts stream.

What to do is decided here from the rules (pure functions :func:`breach_move`,
:func:`pick_move`, :func:`build_report`); the state layer applies it atomically.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import msgspec
from leadrouter_sdk import Decision

from router.engine.availability import chain_plan
from router.engine.ruleset import Ruleset, SlaSpec
from router.engine.sla_clock import deadline
from router.observability import metrics
from router.observability.funnel import FUNNEL_STAGES
from router.services.records import UnknownLead, from_stored
from router.services.rules import RulesManager
from router.settings import Settings
from router.state.errors import StateError
from router.state.sla import Fact, Move, MoveResult, SlaLead, SlaState
from router.state.store import Store

__all__ = [
    "ACTIONS",
    "WRONG_TERRITORY",
    "Action",
    "Conflict",
    "SlaCounts",
    "SlaError",
    "SlaReport",
    "SlaService",
    "TimeToAccept",
    "UnknownPool",
    "UnknownReason",
    "breach_move",
    "build_report",
    "pick_move",
]

log = logging.getLogger("leadrouter.sla")

Action = Literal["accept", "contacted", "reject"]
ACTIONS: tuple[Action, ...] = ("accept", "contacted", "reject")
WRONG_TERRITORY = "wrong_territory"
_OPEN = ("assigned", "accepted", "contacted")


class SlaError(Exception):
    """An owner action the service refuses; the API turns each kind into a problem."""


class Conflict(SlaError):
    """The acting rep is not the current owner, or the lead is not in a state that allows the
    action. ``owner``/``state`` are the lead's current ones."""

    def __init__(self, message: str, *, owner: str | None, state: str | None) -> None:
        super().__init__(message)
        self.owner = owner
        self.state = state


class UnknownReason(SlaError):
    def __init__(self, reason: str | None, allowed: Sequence[str]) -> None:
        super().__init__(f"unknown reject reason {reason!r}" if reason else
                         "a reject needs a reason")
        self.allowed = tuple(allowed)


class UnknownPool(SlaError):
    def __init__(self, message: str, allowed: Sequence[str]) -> None:
        super().__init__(message)
        self.allowed = tuple(allowed)


# -- what to do (pure) -----------------------------------------------------------------------


def pick_move(ruleset: Ruleset, policy: SlaSpec | None, pool: str, now: dt.datetime, *,
              label: str, home: str = "", exclude: Sequence[str] = ()) -> Move:
    """Re-pick in ``pool`` and its overflow chain at ``now`` (earlier owners are excluded by the
    script), with the policy's deadline for whoever gets it (business clock: the rep's own)."""
    chain, queue = chain_plan(ruleset.pools, ruleset.reps, pool, now)
    due: dt.datetime | None = None
    due_by: dict[str, dt.datetime] = {}
    if policy is not None:
        due = deadline(policy, None, ruleset.holidays, now)
        if policy.clock == "business":
            due_by = {m.rep: deadline(policy, ruleset.reps[m.rep], ruleset.holidays, now)
                      for p in chain for m in p.members if m.rep in ruleset.reps}
    return Move(how="pick", label=label, chain=chain, queue=queue, home=home, due_at=due,
                due_by_rep=due_by, exclude=tuple(exclude))


def breach_move(ruleset: Ruleset, lead: SlaLead, now: dt.datetime, *,
                nurture_queue: str) -> Move:
    """What the lead's policy says to do about its breach at ``now``.

    ``on_breach`` applies while the lead has been reassigned (or moved to another pool) fewer
    than ``max_reassignments`` times (at least once: 0 means 1); then ``final`` does (default
    notify). ``reassign`` needs a pool: a lead owned directly (account owner, fixed owner) or
    sitting in a queue goes to ``final`` at once. A policy no longer in the rules notifies.
    """
    policy = ruleset.sla_policies.get(lead.policy)
    if policy is None:
        return Move(how="notify", label="notify")
    action, target = policy.on_breach, policy.on_breach_target
    final = False
    if action in ("reassign", "pool") and (
            lead.reassignments >= max(1, policy.max_reassignments)
            or (action == "reassign" and not lead.pool)):
        action, target, final = policy.final or "notify", policy.final_target, True
    label = f"{action}:{target}" if target else action
    if final:
        label = "final:" + label
    if action == "nurture":
        return Move(how="nurture", label=label, queue=nurture_queue)
    if action == "queue":
        return Move(how="queue", label=label, queue=target or "unassigned")
    if action == "reassign":
        return pick_move(ruleset, policy, lead.pool, now, label=label, home=lead.pool)
    if action == "pool" and target:
        return pick_move(ruleset, policy, target, now, label=label)
    return Move(how="notify", label=label)


# -- the report (pure) -----------------------------------------------------------------------


class TimeToAccept(msgspec.Struct, kw_only=True):
    """Speed to lead: from the handoff to the first accept / contacted, in seconds."""

    count: int = 0
    median_seconds: float | None = None
    p90_seconds: float | None = None


class SlaCounts(msgspec.Struct, kw_only=True):
    handed_off: int = 0
    accepted: int = 0
    accepted_in_time: int = 0
    accepted_late: int = 0
    breached: int = 0
    reassigned: int = 0
    recycled: int = 0
    recycled_by_reason: dict[str, int] = {}
    breach_actions: dict[str, int] = {}
    time_to_accept: TimeToAccept = msgspec.field(default_factory=TimeToAccept)


class SlaReport(msgspec.Struct, kw_only=True):
    since: dt.datetime
    until: dt.datetime
    total: SlaCounts
    by_policy: dict[str, SlaCounts]
    by_pool: dict[str, SlaCounts]


def _group(fact: Fact) -> str:
    if fact.pool:
        return fact.pool
    if fact.queue:
        return f"queue:{fact.queue}"
    return "(direct)"


def _p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]  # nearest rank


def build_report(facts: Iterable[Fact], since: dt.datetime, until: dt.datetime) -> SlaReport:
    """Aggregate the facts: a handoff counts where the lead was handed off; an accept, breach,
    reassignment or recycle where the lead was at that moment (its pool then; a reassignment
    counts against the pool it left)."""
    total = SlaCounts()
    by_policy: dict[str, SlaCounts] = {}
    by_pool: dict[str, SlaCounts] = {}
    tta: dict[int, list[float]] = {}
    for fact in facts:
        buckets = (total, by_policy.setdefault(fact.policy or "(none)", SlaCounts()),
                   by_pool.setdefault(_group(fact), SlaCounts()))
        for c in buckets:
            if fact.kind == "handoff":
                c.handed_off += 1
            elif fact.kind == "accept":
                c.accepted += 1
                if fact.in_time:
                    c.accepted_in_time += 1
                else:
                    c.accepted_late += 1
                if fact.tta_ms is not None:
                    tta.setdefault(id(c), []).append(fact.tta_ms / 1000)
            elif fact.kind == "breach":
                c.breached += 1
                action = fact.action or "notify"
                c.breach_actions[action] = c.breach_actions.get(action, 0) + 1
            elif fact.kind == "reassign":
                c.reassigned += 1
            elif fact.kind == "recycle":
                c.recycled += 1
                reason = fact.reason or "other"
                c.recycled_by_reason[reason] = c.recycled_by_reason.get(reason, 0) + 1
    for c in (total, *by_policy.values(), *by_pool.values()):
        values = tta.get(id(c))
        if values:
            c.time_to_accept = TimeToAccept(count=len(values),
                                            median_seconds=statistics.median(values),
                                            p90_seconds=_p90(values))
    return SlaReport(since=since, until=until, total=total,
                     by_policy=dict(sorted(by_policy.items())),
                     by_pool=dict(sorted(by_pool.items())))


def _count_stages(lead: SlaLead, action: Action) -> None:
    """The funnel's first stages for Prometheus (lua/_funnel.lua counts them in the store)."""
    if lead.accepted_at is None:
        FUNNEL_STAGES.labels("accepted").inc()
    if action == "contacted" and lead.state != "contacted":
        FUNNEL_STAGES.labels("contacted").inc()


# -- the service -----------------------------------------------------------------------------


class SlaService:
    """Owner actions, the breach worker and the report, for one process."""

    def __init__(self, *, store: Store, rules: RulesManager, settings: Settings,
                 clock: Callable[[], dt.datetime]) -> None:
        self.store = store
        self.state = SlaState(store)
        self.rules = rules
        self.settings = settings
        self.now = clock
        self.lease = dt.timedelta(seconds=settings.sla_lease_seconds)

    # -- owner actions -----------------------------------------------------------------------

    async def act(self, lead_id: str, action: Action, *, rep: str, reason: str | None = None,
                  note: str | None = None, pool: str | None = None, via: str = "") -> Decision:
        """Apply ``rep``'s action; returns the lead as stored afterwards. ``via`` is the
        credential that acted for the rep (``admin-token``, a key id), kept in the history.
        Raises :class:`UnknownLead`, :class:`Conflict`, :class:`UnknownReason`,
        :class:`UnknownPool`."""
        ruleset = self.rules.current
        if action == "reject":
            if reason not in ruleset.reject_reasons:
                raise UnknownReason(reason, ruleset.reject_reasons)
            if pool is not None:
                if reason != WRONG_TERRITORY:
                    raise UnknownPool(f"'pool' goes with reason {WRONG_TERRITORY!r} only (where "
                                      "the lead should have gone)", sorted(ruleset.pools))
                if pool not in ruleset.pools:
                    raise UnknownPool(f"unknown pool {pool!r}", sorted(ruleset.pools))
        for _ in range(3):  # the lead may move between the read and the write: look again
            now = self.now()
            lead = await self.state.read_lead(lead_id)
            if lead is None:
                raise UnknownLead(f"no lead {lead_id!r}")
            if not self._allowed(lead, action, rep):
                break  # nothing to do: accepted twice, contacted twice
            move = self._reject_move(ruleset, lead, rep, reason, pool, now) \
                if action == "reject" else None
            result = await self.state.owner_action(lead, action=action, rep=rep, now=now,
                                                   move=move, reason=reason or "",
                                                   note=note or "", via=via,
                                                   funnel=ruleset.funnel)
            if result.status == "not_found":
                raise UnknownLead(f"no lead {lead_id!r}")
            if result.status == "ok":
                if action == "reject":
                    metrics.RECYCLES.labels(reason or "other").inc()
                else:
                    _count_stages(lead, action)
                log.info("lead %s: %s by %s%s", lead_id, action, rep,
                         f" ({reason})" if reason else "")
                break
        stored = await self.store.get_lead(lead_id)
        if stored is None:
            raise UnknownLead(f"no lead {lead_id!r}")
        return from_stored(stored)

    def _allowed(self, lead: SlaLead, action: Action, rep: str) -> bool:
        """True if the action changes something; False if it already happened (idempotent
        repeat); raises :class:`Conflict` when this rep may not do it now."""
        if lead.state == "queued" and not lead.owner:
            return True  # nobody owns it: whoever acts first takes it
        if lead.owner != rep:
            who = f"owned by {lead.owner}" if lead.owner else "not owned by anyone"
            raise Conflict(f"lead {lead.lead_id} is {who} now (state {lead.state}): only the "
                           f"current owner's {action} counts", owner=lead.owner or None,
                           state=lead.state)
        if action == "accept" and lead.state in ("accepted", "contacted"):
            return False
        if action == "contacted" and lead.state == "contacted":
            return False
        if lead.state in _OPEN:
            return True
        raise Conflict(f"lead {lead.lead_id} is {lead.state}: there is nothing to {action}",
                       owner=lead.owner or None, state=lead.state)

    def _reject_move(self, ruleset: Ruleset, lead: SlaLead, rep: str, reason: str | None,
                     pool: str | None, now: dt.datetime) -> Move:
        if reason == WRONG_TERRITORY:
            if pool:
                return pick_move(ruleset, ruleset.sla_policies.get(lead.policy), pool, now,
                                 label=f"reroute:{pool}", exclude=(rep,))
            return Move(how="queue", label="reroute", queue=self.settings.reroute_queue)
        return Move(how="nurture", label="recycle", queue=self.settings.nurture_queue)

    # -- breach worker -----------------------------------------------------------------------

    async def tick(self) -> int:
        """Claim one batch of due deadlines and escalate them; returns how many were claimed."""
        now = self.now()
        fence, ids = await self.state.claim_due(now, lease=self.lease,
                                                batch=self.settings.sla_batch)
        if not ids:
            return 0
        leads = await self.state.read_leads(ids)
        ruleset = self.rules.current
        results = await asyncio.gather(*(self._escalate(ruleset, lead_id, lead, fence, now)
                                         for lead_id, lead in zip(ids, leads, strict=True)),
                                       return_exceptions=True)
        for lead_id, result in zip(ids, results, strict=True):
            if isinstance(result, StateError):
                raise result  # Redis trouble: the claims' leases bring these leads back
            if isinstance(result, BaseException):  # one bad lead must not stall the others
                log.error("SLA worker: lead %s not escalated (retried after the lease): %r",
                          lead_id, result)
        return len(ids)

    async def _escalate(self, ruleset: Ruleset, lead_id: str, lead: SlaLead | None, fence: int,
                        now: dt.datetime) -> MoveResult:
        if lead is None:  # expired: the script just drops its schedule entry
            lead = SlaLead(lead_id=lead_id, state="", owner="", pool="", queue="", due_at=None,
                           owners=(), reassignments=0, policy="", assigned_at=None,
                           accepted_at=None, sla_state="")
            move = Move(how="notify")
        else:
            move = breach_move(ruleset, lead, now, nurture_queue=self.settings.nurture_queue)
        result = await self.state.escalate(lead, fence=fence, move=move, now=now)
        if result.acted:
            metrics.SLA_BREACHES.labels(lead.policy).inc()
            if result.status == "reassigned":
                metrics.SLA_REASSIGNMENTS.labels(lead.policy).inc()
            log.info("lead %s: SLA %s breached (owner %s) → %s: %s", lead_id, lead.policy,
                     lead.owner or "-", move.label, result.status
                     + (f" to {result.owner}" if result.owner else "")
                     + (f" in queue {result.queue}" if result.queue else ""))
        return result

    async def run(self) -> None:
        """The breach worker: poll forever (cancel the task to stop). Redis outages are logged
        once and retried; nothing is lost, deadlines stay in Redis."""
        poll = self.settings.sla_poll_seconds
        failing = False
        while True:
            claimed = 0
            try:
                claimed = await self.tick()
                if failing:
                    log.info("SLA worker: state store reachable again")
                failing = False
            except StateError as exc:
                if not failing:
                    log.warning("SLA worker: %s; retrying every %.1fs", exc, poll)
                failing = True
            except Exception:
                log.exception("SLA worker: unexpected error; retrying")
            if claimed < self.settings.sla_batch:  # a full batch: more may be due, go on
                await asyncio.sleep(poll)

    # -- report ------------------------------------------------------------------------------

    async def report(self, since: dt.datetime, until: dt.datetime) -> SlaReport:
        return build_report(await self.state.facts(since, until), since, until)
