"""The compiled, immutable ruleset: what the loader produces and evaluation consumes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from leadrouter_sdk import Contribution

from router.engine.engagement import EngagementSpec
from router.engine.expr import StageFn
from router.engine.funnel import DEFAULT_FUNNEL, FunnelSpec
from router.engine.schema import Hours

__all__ = ["CompiledRule", "PoolSpec", "RepSpec", "Route", "Ruleset", "SlaSpec", "Stage"]


class Route(msgspec.Struct, frozen=True, kw_only=True):
    """Where the assignment rule sends the lead: an owner, a pool or a queue."""

    kind: str  # "account_owner" | "owner" | "pool" | "queue"
    target: str | None
    rule: str | None
    reason: str


class CompiledRule(msgspec.Struct, frozen=True, kw_only=True):
    """One rule as loaded: where it came from and what it does when it matches."""

    id: str
    stage: str
    when: str
    file: str
    line: int | None = None
    group: str | None = None
    points: float | None = None
    status: str | None = None
    target_kind: str | None = None
    target: str | None = None
    description: str | None = None
    # Built once at load so evaluating a lead allocates nothing for them.
    contribution: Contribution | None = None
    route: Route | None = None


class Stage(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    mode: str
    rules: tuple[CompiledRule, ...]
    fn: StageFn
    exprs: tuple[Any, ...] = ()  # the CheckedExpr of each rule, for the fused function


class RepSpec(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str | None
    timezone: str
    hours: Hours
    weight: int
    daily_cap: int | None


class PoolSpec(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    strategy: str
    members: tuple[tuple[str, int], ...]
    daily_cap: int | None
    pool_daily_cap: int | None
    working_hours: bool
    overflow_kind: str
    overflow: str
    description: str | None = None


class SlaSpec(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    accept_within: int
    clock: str
    on_breach: str
    on_breach_target: str | None
    max_reassignments: int
    final: str | None
    final_target: str | None
    warn_before: int | None = None  # seconds; None: the service's default


class Ruleset(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one rules directory says, compiled. Never mutated after loading."""

    version: str
    source: str
    files: tuple[str, ...]
    scoring: Stage
    grades: tuple[tuple[str, float], ...]
    qualification: Stage
    territories: Stage
    segments: Stage
    assignment: Stage
    sla: Stage
    pools: dict[str, PoolSpec]
    reps: dict[str, RepSpec]
    sla_policies: dict[str, SlaSpec]
    holidays: frozenset[str]
    reject_reasons: tuple[str, ...]
    windows: frozenset[tuple[str, int]]
    last_events: frozenset[str]
    uses_account_owner: bool
    rules: dict[str, CompiledRule]
    # All stages compiled into one function (router.engine._fused); evaluate() calls this.
    run: Callable[..., Any] | None = None
    # forms: / sources: (router.intake.config.IntakeConfig), compiled with the rules
    intake: Any = None
    # engagement: decaying points per event type (router.engine.engagement), and every event
    # type the rules read (count/last arguments and those points), which the state layer reads
    engagement: EngagementSpec | None = None
    engagement_events: tuple[str, ...] = ()
    # funnel: the stages after routing (rules/funnel.yaml; the default funnel without one)
    funnel: FunnelSpec = DEFAULT_FUNNEL

    @property
    def stages(self) -> tuple[Stage, ...]:
        return (self.scoring, self.qualification, self.territories, self.segments,
                self.assignment, self.sla)
