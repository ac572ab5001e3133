"""Public result types: what a lead's score and decision look like to the API and to plugins."""

from __future__ import annotations

import msgspec

__all__ = ["Contribution", "Score"]


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
