"""What a replay compares, lead by lead: the stored decision (``before``) and the one the
candidate rules make on the same input and snapshot (``after``).

The replay engine (router/services/replay.py) produces :class:`ReplayedLead` items in arrival
order; the report (router/services/replay_report.py) aggregates them as they stream by, so a
replay of a million leads never holds them all. Shadow mode feeds the same report with the
live decision and the shadow ruleset's. One shape for all three, kept here so none of them
imports another.
"""

from __future__ import annotations

import datetime as dt

import msgspec
from leadrouter_sdk import Step

__all__ = ["Outcome", "PoolFacts", "ReplayQuery", "ReplayedLead", "Skip"]


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """Where one decision sent a lead, and why (the fields a replay compares)."""

    status: str
    score: float
    grade: str | None = None
    territory: str | None = None
    segment: str | None = None
    pool: str | None = None
    owner: str | None = None
    queue: str | None = None
    sla_policy: str | None = None
    route_rule: str | None = None
    # Every rule that matched (scoring, qualification, routing): the report's hit counts.
    matched: tuple[str, ...] = ()
    # Filled only where the report may show it (changed leads): building explanations for
    # every replayed lead would cost more than deciding them.
    explanation: tuple[Step, ...] = ()


class ReplayedLead(msgspec.Struct, frozen=True, kw_only=True):
    lead_id: str
    created_at: dt.datetime
    before: Outcome
    after: Outcome
    # The rules version that decided ``before`` (a window may span a hot reload).
    rules_version: str = ""


class PoolFacts(msgspec.Struct, frozen=True, kw_only=True):
    """A pool as one ruleset defines it: members with weights and daily caps (the report's
    fairness needs the weights of both sides)."""

    pool: str
    strategy: str
    weights: dict[str, float]
    caps: dict[str, int] = {}


class Skip(msgspec.Struct, frozen=True, kw_only=True):
    """A lead in the window that could not be replayed, and why (e.g. ``stored before
    replay`` for leads decided before inputs were kept, ``expired``, ``rules version not
    given``)."""

    lead_id: str
    reason: str


class ReplayQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Which stored leads a replay reads: the arrival window (None: from the oldest kept /
    up to now), at most ``limit`` of them, and filters on the *stored* decision."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int | None = None
    status: str | None = None
    pool: str | None = None
    territory: str | None = None
