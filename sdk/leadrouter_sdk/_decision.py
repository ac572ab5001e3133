"""Public result types: what a lead's score and decision look like to the API and to plugins."""

from __future__ import annotations

import datetime
from typing import Any

import msgspec

__all__ = ["Assignment", "Contribution", "Decision", "HistoryEntry", "Score", "Sla", "Step"]


class Contribution(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Points one rule (or plugin scorer) gave a lead, and why."""

    rule: str
    group: str
    points: float
    reason: str | None = None


class Score(msgspec.Struct, frozen=True, kw_only=True):
    """A lead's score: the total, its grade, the group totals and every contribution.

    The contributions always sum to ``total``; the group totals are the sums per group.
    """

    total: float
    grade: str | None
    fit: float
    bant: float
    engagement: float
    contributions: tuple[Contribution, ...] = ()


class Step(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One line of the explanation: what a stage decided and which rule decided it."""

    stage: str
    outcome: str | None
    rule: str | None = None
    detail: str = ""


class Assignment(msgspec.Struct, frozen=True, kw_only=True):
    """Who got the lead (``owner``), through which pool or queue, and why."""

    owner: str | None = None
    pool: str | None = None
    queue: str | None = None
    rule: str | None = None
    strategy: str | None = None
    reason: str = ""


class Sla(msgspec.Struct, frozen=True, kw_only=True):
    """The handoff SLA the lead is under: the policy, its deadline and where it stands."""

    policy: str | None = None
    due_at: datetime.datetime | None = None
    state: str | None = None


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One thing that happened to a lead (created, assigned, accepted, breached, ...)."""

    at: datetime.datetime
    event: str
    detail: dict[str, Any] = {}


class Decision(msgspec.Struct, kw_only=True):
    """What the service decided about one lead: the 201 body of ``POST /v1/leads``."""

    lead_id: str
    status: str
    score: Score
    territory: str | None
    segment: str | None
    assignment: Assignment
    sla: Sla
    rules_version: str
    duplicate: bool = False
    # an external_id repeat with other data stored as an update (`external_id_repeat: update`)
    updated: bool = False
    created_at: datetime.datetime | None = None
    matched: tuple[str, ...] = ()
    explanation: tuple[Step, ...] = ()
    history: tuple[HistoryEntry, ...] = ()
