"""The shape of the rule files, as msgspec Structs.

Each list item is decoded on its own (see :mod:`router.engine.loader`), so one bad rule yields one
error and the loader goes on to find the others. ``forbid_unknown_fields`` turns a misspelt key
into an error; the loader adds the "did you mean" from the Struct's own field names.
"""

from __future__ import annotations

import datetime
import re
from typing import Annotated, Literal

import msgspec

__all__ = [
    "SECTIONS",
    "STATUSES",
    "AssignRule",
    "Engagement",
    "EngagementEvent",
    "MatchRule",
    "Pool",
    "PoolMember",
    "QualRule",
    "Rep",
    "ScoreRule",
    "SlaRule",
    "Target",
    "parse_duration",
    "parse_working_hours",
]

# Ordered from worst to best: a status "rises" when it moves right (engagement re-qualification).
STATUSES = ("bad_lead", "nurture", "mql", "sql")
STRATEGIES = ("round_robin", "weighted_round_robin", "least_loaded")
BREACH_ACTIONS = ("reassign", "notify", "nurture")

RuleId = Annotated[str, msgspec.Meta(min_length=1, max_length=100,
                                      pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
Text = Annotated[str, msgspec.Meta(max_length=2000)]
Weight = Annotated[int, msgspec.Meta(ge=1, le=1000)]
Cap = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]


class _Rule(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ScoreRule(_Rule):
    id: RuleId
    when: Text
    points: int | float
    description: Text | None = None


class QualRule(_Rule):
    status: Literal["bad_lead", "nurture", "mql", "sql"]
    when: Text
    id: RuleId | None = None
    description: Text | None = None


class MatchRule(_Rule):
    id: RuleId
    when: Text
    description: Text | None = None


class Target(_Rule):
    """Where a lead goes instead: another pool or a named queue (exactly one)."""

    pool: RuleId | None = None
    queue: RuleId | None = None


class PoolMember(_Rule):
    rep: RuleId
    weight: Weight | None = None


class Pool(_Rule):
    strategy: Literal["round_robin", "weighted_round_robin", "least_loaded"]
    members: list[RuleId | PoolMember]
    daily_cap: Cap | None = None
    pool_daily_cap: Cap | None = None
    working_hours: bool = True
    overflow: Target | None = None
    description: Text | None = None


class AssignRule(_Rule):
    id: RuleId
    when: Text
    assign: Literal["account_owner"] | None = None
    owner: RuleId | None = None
    pool: RuleId | None = None
    queue: RuleId | None = None
    description: Text | None = None


class Rep(_Rule):
    id: RuleId
    name: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    timezone: str = "UTC"
    working_hours: dict[str, str | list[str]] = {}
    weight: Weight = 1
    daily_cap: Cap | None = None
    description: Text | None = None


class SlaRule(_Rule):
    id: RuleId
    when: Text
    accept_within: str | int
    clock: Literal["wall", "business"] = "wall"
    on_breach: Literal["reassign", "notify", "nurture"] | Target = "reassign"
    max_reassignments: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0
    final: Literal["notify", "nurture"] | Target | None = None
    # sla.warning events this long before the deadline (0: none; unset: the service's
    # LEADROUTER_SLA_WARN_BEFORE)
    warn_before: str | int | None = None
    description: Text | None = None


EventName = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class EngagementEvent(_Rule):
    """Points one event of this type is worth, decaying with the section's half-life."""

    points: int | float
    cap: Annotated[int, msgspec.Meta(gt=0)] | Annotated[float, msgspec.Meta(gt=0)] | None = None
    description: Text | None = None


class Engagement(_Rule):
    """The ``engagement:`` section: decaying points per event type (router/engine/engagement.py).
    ``events`` values are decoded one by one (an :class:`EngagementEvent` or a bare number)."""

    half_life: str | int
    events: dict[EventName, object] = {}
    description: Text | None = None


class _Sections(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Top-level keys a rule file may hold; each section may appear in only one file."""

    scoring: dict[str, list[object]] | None = None
    grades: dict[str, int | float] | None = None
    qualification: list[object] | None = None
    territories: list[object] | None = None
    segments: list[object] | None = None
    pools: dict[str, object] | None = None
    assignment: list[object] | None = None
    reps: list[object] | None = None
    holidays: list[datetime.date] | None = None
    sla: list[object] | None = None
    reject_reasons: list[RuleId] | None = None
    engagement: dict[str, object] | None = None
    # intake (router/intake/config.py): HTML forms and machine sources, usually in intake.yaml
    forms: dict[str, object] | None = None
    sources: dict[str, object] | None = None
    leads: dict[str, object] | None = None  # what every lead must bring, how repeats answer
    funnel: dict[str, object] | None = None  # stages after routing (router/engine/funnel.py)


SECTIONS = tuple(_Sections.__struct_fields__)

_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")


def parse_duration(value: str | int) -> int:
    """Seconds in ``30s``, ``5m``, ``4h``, ``2d``, ``1h30m``, or a plain number of seconds
    (``3600``, also quoted: YAML and environment variables both give it as text)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError("a duration must be positive")
        return value
    m = _DURATION.match(str(value))
    if not m or not any(m.groups()):
        raise ValueError(f"{value!r} is not a duration")
    d, h, mins, s = (int(g) if g else 0 for g in m.groups())
    total = d * 86400 + h * 3600 + mins * 60 + s
    if total <= 0:
        raise ValueError("a duration must be positive")
    return total


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")

Hours = tuple[tuple[tuple[int, int], ...], ...]


def _days(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.lower().replace(" ", "").split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            if a not in _DAYS or b not in _DAYS:
                raise ValueError(f"unknown day range {part!r}")
            i, j = _DAYS.index(a), _DAYS.index(b)
            out.extend(range(i, j + 1) if i <= j else [*range(i, 7), *range(0, j + 1)])
        elif part in _DAYS:
            out.append(_DAYS.index(part))
        else:
            raise ValueError(f"unknown day {part!r}")
    return out


def parse_working_hours(spec: dict[str, str | list[str]]) -> Hours:
    """Per weekday (Monday first) the working intervals in minutes since local midnight."""
    week: list[list[tuple[int, int]]] = [[] for _ in range(7)]
    for days, ranges in spec.items():
        for text in [ranges] if isinstance(ranges, str) else ranges:
            m = _RANGE.match(text)
            if not m:
                raise ValueError(f"{text!r} is not a time range like 09:00-17:00")
            h1, m1, h2, m2 = (int(g) for g in m.groups())
            start, end = h1 * 60 + m1, h2 * 60 + m2
            if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or end > 24 * 60:
                raise ValueError(f"{text!r} is not a valid time range")
            if end <= start:
                raise ValueError(f"{text!r} ends before it starts (split overnight shifts "
                                 "into two days)")
            for day in _days(days):
                week[day].append((start, end))
    return tuple(tuple(sorted(day)) for day in week)
