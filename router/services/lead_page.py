"""What the console's lead page shows (``/ui/leads/{id}``), read once and explained.

* the stored decision (as ``GET /v1/leads/{id}``) and the lead as it was decided;
* the score waterfall: each contribution from the running total, ending on the total, and
  whether the contributions sum to the stored score;
* the routing path: the explanation's stages and, for a first-match stage, the earlier rules
  that did not match (their conditions and file:line — from the rules the lead was decided
  with only: other rules could list other rules);
* why X, why not Y (router/services/why_not.py) from the pick the commit recorded;
* the SLA clock: policy, its accept window, due, time left or breached, accepted/contacted.

Nothing is written; two round trips (the lead and its pick facts).
"""

from __future__ import annotations

import datetime as dt

import msgspec
from leadrouter_sdk import Decision, Lead

from router.engine.ruleset import Ruleset
from router.services.records import decode_record, from_stored
from router.services.why_not import WhyNot, derive, read_pick
from router.state.store import Store

__all__ = ["Bar", "EarlierRule", "LeadPage", "PathStep", "SlaClock", "read_lead_page"]

_FIRST_MATCH = ("qualification", "territories", "segments", "assignment", "sla")
_TOLERANCE = 1e-6


class Bar(msgspec.Struct, frozen=True, kw_only=True):
    """One waterfall bar: from ``start`` to ``end`` (``points`` = end - start)."""

    label: str
    group: str
    points: float
    start: float
    end: float
    reason: str | None = None
    total: bool = False


class EarlierRule(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    when: str
    where: str  # file:line


class PathStep(msgspec.Struct, frozen=True, kw_only=True):
    stage: str
    outcome: str | None
    rule: str | None
    detail: str
    earlier: tuple[EarlierRule, ...] = ()  # first-match stages with the decision's rules


class SlaClock(msgspec.Struct, frozen=True, kw_only=True):
    policy: str | None
    accept_within_s: int | None
    due_at: dt.datetime | None
    state: str | None
    left_s: int | None  # seconds to the deadline (negative: past it) while the clock runs
    breached: bool
    accepted_at: dt.datetime | None
    contacted_at: dt.datetime | None


class LeadPage(msgspec.Struct, kw_only=True):
    decision: Decision
    lead: Lead
    bars: tuple[Bar, ...]
    sums_to_score: bool
    path: tuple[PathStep, ...]
    why: WhyNot | None  # None: no pick recorded (not pool-routed, or no facts kept)
    rules_match: bool  # the running rules are the ones that decided the lead
    running_version: str
    sla: SlaClock
    reject_reasons: tuple[str, ...]
    pools: tuple[str, ...]


def waterfall(decision: Decision) -> tuple[tuple[Bar, ...], bool]:
    """The contributions as bars from the running total, then the total; and whether they
    sum to the stored score."""
    bars, running = [], 0.0
    for c in decision.score.contributions:
        bars.append(Bar(label=c.rule, group=c.group, points=c.points, start=running,
                        end=running + c.points, reason=c.reason))
        running += c.points
    total = decision.score.total
    bars.append(Bar(label="total", group="", points=total, start=0.0, end=total, total=True))
    return tuple(bars), abs(running - total) <= _TOLERANCE


def routing_path(decision: Decision, ruleset: Ruleset | None) -> tuple[PathStep, ...]:
    """The explanation's steps; with the decision's own rules, a first-match stage lists the
    rules before the one that matched (all of them when none did)."""
    out = []
    for step in decision.explanation:
        earlier: tuple[EarlierRule, ...] = ()
        if ruleset is not None and step.stage in _FIRST_MATCH:
            rules = getattr(ruleset, step.stage).rules
            ids = [r.id for r in rules]
            if step.rule in ids:
                upto = ids.index(step.rule)
            else:  # no rule matched: every rule was tried
                upto = len(ids) if step.rule is None else 0
            earlier = tuple(EarlierRule(id=r.id, when=r.when,
                                        where=f"{r.file}:{r.line}" if r.line else r.file)
                            for r in rules[:upto])
        out.append(PathStep(stage=step.stage, outcome=step.outcome, rule=step.rule,
                            detail=step.detail, earlier=earlier))
    return tuple(out)


def sla_clock(decision: Decision, ruleset: Ruleset, now: dt.datetime) -> SlaClock:
    sla = decision.sla
    spec = ruleset.sla_policies.get(sla.policy) if sla.policy else None
    accepted = next((h.at for h in decision.history if h.event == "accepted"), None)
    contacted = next((h.at for h in decision.history if h.event == "contacted"), None)
    running = sla.state == "pending" and sla.due_at is not None
    left = int((sla.due_at - now).total_seconds()) if running and sla.due_at else None
    return SlaClock(policy=sla.policy, accept_within_s=spec.accept_within if spec else None,
                    due_at=sla.due_at, state=sla.state, left_s=left,
                    breached=sla.state == "breached" or (left is not None and left < 0),
                    accepted_at=accepted, contacted_at=contacted)


async def read_lead_page(store: Store, ruleset: Ruleset, lead_id: str, now: dt.datetime
                         ) -> LeadPage | None:
    """Everything the lead page shows, or None: no such lead (never, expired, erased)."""
    stored = await store.get_lead(lead_id)
    if stored is None:
        return None
    record = decode_record(stored.decision)
    decision = from_stored(stored)
    same = decision.rules_version == ruleset.version
    decided_with = ruleset if same else None
    facts = await read_pick(store, lead_id)
    why = None
    if facts is not None and facts.pools and decision.created_at is not None:
        why = derive(facts, decided_with, decision.created_at)
    bars, sums = waterfall(decision)
    return LeadPage(decision=decision, lead=record.lead, bars=bars, sums_to_score=sums,
                    path=routing_path(decision, decided_with), why=why, rules_match=same,
                    running_version=ruleset.version, sla=sla_clock(decision, ruleset, now),
                    reject_reasons=ruleset.reject_reasons, pools=tuple(sorted(ruleset.pools)))
