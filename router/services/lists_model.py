"""The typed results of the list APIs (router/services/lists.py, ``ListService``).

Stable: the console (leads, queues, reps & pools pages) renders these. Times are UTC-aware
datetimes; ages are seconds; ``next_cursor`` None = the last page.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from router.state.models import MemberStats

__all__ = ["SLA_STATES", "AccountPage", "AccountRow", "BadCursor", "BadFilter", "ImportLineError",
           "ImportRejected", "ImportResult", "LeadFilter", "LeadPage", "LeadRow", "ListsOff",
           "PoolView", "QueueItem", "QueuePage", "QueueSummary", "RepSummary",
           "UnsupportedImport"]

# The SLA states a lead can be in (pending: the clock runs; lua/_sla.lua, owner, escalate).
SLA_STATES = ("pending", "met", "late", "breached", "stopped")


class BadCursor(ValueError):
    """A cursor this deployment did not sign, garbled, or made for other filters (→ 400)."""


class ListsOff(RuntimeError):
    """The list indexes are not written here (LEADROUTER_LIST_INDEXES=false) (→ 409)."""


class BadFilter(ValueError):
    """A filter value that cannot match (→ 422): ``field`` and the ``allowed`` values."""

    def __init__(self, field: str, value: str, allowed: tuple[str, ...]) -> None:
        super().__init__(f"{field}={value!r} is not one of: {', '.join(allowed)}")
        self.field, self.value, self.allowed = field, value, allowed


class LeadFilter(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /v1/leads`` filters; None = any. ``q``: an exact email or external id."""

    status: str | None = None
    queue: str | None = None
    owner: str | None = None
    pool: str | None = None
    territory: str | None = None
    segment: str | None = None
    grade: str | None = None
    sla_state: str | None = None
    since: dt.datetime | None = None  # created at or after
    until: dt.datetime | None = None  # created at or before
    q: str | None = None


class LeadRow(msgspec.Struct, frozen=True, kw_only=True):
    """One lead of a list, from its index entry and live fields (never its decision JSON)."""

    lead_id: str
    created_at: dt.datetime
    state: str  # assigned, queued, accepted, contacted, recycled...
    status: str | None
    owner: str | None
    pool: str | None
    queue: str | None
    territory: str | None
    segment: str | None
    grade: str | None
    sla_state: str | None
    due_at: dt.datetime | None


class LeadPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of leads, newest first. ``scanned``: index entries read for it (a page with
    several filters may be short when the scan budget ran out; follow ``next_cursor``)."""

    items: list[LeadRow]
    next_cursor: str | None
    scanned: int


class QueueSummary(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    size: int  # leads waiting (within the retention)
    oldest_at: dt.datetime | None
    oldest_age_seconds: float | None


class QueueItem(msgspec.Struct, frozen=True, kw_only=True):
    lead: LeadRow
    queued_at: dt.datetime
    age_seconds: float


class QueuePage(msgspec.Struct, frozen=True, kw_only=True):
    """What waits in one queue, oldest first."""

    queue: str
    size: int
    items: list[QueueItem]
    next_cursor: str | None


class RepSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A rep of the rules with its live facts."""

    id: str
    name: str | None
    timezone: str
    status: str  # available, away, out_of_office (as set; see available_now)
    until: dt.datetime | None
    available_now: bool
    in_hours_now: bool
    why_not: tuple[str, ...]  # why it takes no lead now: away, outside working hours, at cap
    open_leads: int
    today: int  # leads assigned on its local day
    daily_cap: int | None
    next_working_hours: dt.datetime | None  # start of its next working window; None = now/never
    pools: tuple[str, ...]


class PoolView(msgspec.Struct, frozen=True, kw_only=True):
    """A pool: members with eligibility now (and why not), today's use and distribution."""

    id: str
    strategy: str
    day: str
    used_today: int
    pool_cap: int | None
    last_assigned: str | None
    members: tuple[MemberStats, ...]
    distribution: dict[str, int]  # rep → leads assigned today (the rep's day counter)
    eligible_now: int


class AccountRow(msgspec.Struct, frozen=True, kw_only=True):
    domain: str
    owner: str


class AccountPage(msgspec.Struct, frozen=True, kw_only=True):
    """Accounts in domain order."""

    items: list[AccountRow]
    next_cursor: str | None


class ImportLineError(msgspec.Struct, frozen=True, kw_only=True):
    line: int  # 1-based line of the body (CSV: the header is line 1)
    message: str
    fix: str


class ImportRejected(ValueError):
    """Nothing imported: every bad line, each with how to fix it (→ 422)."""

    def __init__(self, errors: list[ImportLineError]) -> None:
        super().__init__(f"{len(errors)} bad line(s); nothing imported")
        self.errors = errors


class UnsupportedImport(ValueError):
    """An import body of another Content-Type than CSV / JSON lines (→ 415)."""


class ImportResult(msgspec.Struct, frozen=True, kw_only=True):
    imported: int  # rows written (new owner or changed)
    lines: int
