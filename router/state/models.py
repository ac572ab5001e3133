"""The values the state layer takes and returns: msgspec Structs, so the API can encode them as
they are. Times are aware UTC datetimes here and integer milliseconds in Redis."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec

from router.engine.availability import PoolPlan

__all__ = [
    "AssignResult",
    "Claim",
    "ClaimRequest",
    "ClaimState",
    "CommitPlan",
    "EngagementLink",
    "Guard",
    "HistoryEntry",
    "MemberStats",
    "PoolStats",
    "Prefetched",
    "RepState",
    "RepStatus",
    "StoredLead",
    "TransitionResult",
    "from_ms",
    "to_ms",
]

RepStatus = Literal["available", "away", "out_of_office"]
ClaimState = Literal["new", "done", "mismatch", "in_flight"]


def to_ms(when: dt.datetime) -> int:
    if when.tzinfo is None:
        raise ValueError("times passed to the state layer must be timezone-aware")
    return int(when.timestamp() * 1000)


def from_ms(ms: int | float | str | bytes) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(ms) / 1000, dt.UTC)


class ClaimRequest(msgspec.Struct, frozen=True, kw_only=True):
    """An idempotency key to claim before routing.

    ``scope`` names whose key it is: ``key:<source>`` for an ``Idempotency-Key`` header (use
    the API key or source name), ``ext:<source>`` for an ``external_id``. ``fingerprint`` is the
    sha256 hex of the request body; ``lead_id`` the id this request will use if it wins.
    """

    scope: str
    key: str
    fingerprint: str
    lead_id: str
    # sha256 hex of the raw body: what records written before fingerprints were versioned
    # (no ``v2:`` prefix) hold, so an exact retry of such a lead still matches (Store).
    legacy: str = ""

    def matches(self, stored: str) -> bool:
        """Whether a completed record's fingerprint ``stored`` is this request's."""
        return stored == self.fingerprint or (
            bool(self.legacy) and not stored.startswith("v2:") and stored == self.legacy)


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of one claim.

    * ``new``: this request owns the key (marked in flight) and must commit or release it.
    * ``done``: an earlier request completed with ``lead_id`` and the same body fingerprint.
    * ``mismatch``: completed with ``lead_id`` but a different body (422 for Idempotency-Key;
      for an external_id the caller decides, it may just be an updated form post).
    * ``in_flight``: another request holds the key right now (409).
    """

    scope: str
    key: str
    state: ClaimState
    lead_id: str
    fingerprint: str
    redis_key: str
    marker: str  # our in-flight value; commit checks the key still holds it

    @property
    def owned(self) -> bool:
        return self.state == "new"


class Guard(msgspec.Struct, frozen=True):
    """An optimistic read (``Store.prefetch(optimistic=True)``): the lead was decided on a
    guess of ``HMGET key *fields`` instead of a read. The commit checks the first field (a
    version: the person's ``seq``, the account's ``owner``) against ``seen`` before it writes."""

    key: str
    fields: tuple[str, ...]
    seen: bytes | None
    # Remember what a stale commit finds for the next guesses: account owners only, never a
    # person's hash (their traits must not outlive an erasure in a worker's memory).
    keep: bool = False


class Prefetched(msgspec.Struct, frozen=True, kw_only=True):
    """What the rules get from Redis. With ``guards`` the values are guesses, checked by the
    commit; ``reread(AssignResult.reads)`` of a stale commit is the real ``Prefetched``."""

    claims: tuple[Claim, ...]
    account_owner: str | None
    extra: tuple[Any, ...] = ()
    guards: tuple[Guard, ...] = ()
    reread: Any = None

    @property
    def owned_claims(self) -> tuple[Claim, ...]:
        return tuple(c for c in self.claims if c.owned)

    @property
    def blocking(self) -> Claim | None:
        """The claim that stops routing, if any: mismatch first (the client sent something
        wrong), then in flight (retry later), then done (return the stored decision)."""
        for state in ("mismatch", "in_flight", "done"):
            for claim in self.claims:
                if claim.state == state:
                    return claim
        return None


class EngagementLink(msgspec.Struct, frozen=True, kw_only=True):
    """Ties a person's engagement (router/state/engagement.py) to the lead being committed: the
    commit links them and reports (``AssignResult.engagement_stale``) whether events arrived
    after the prefetch read the person at ``seq``."""

    person: str
    seq: int
    dom: str = ""  # the lead's company domain: re-scoring reads its account owner
    ttl_ms: int


class CommitPlan(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the commit script needs, resolved by Python beforehand.

    ``kind`` is the engine's route kind. For ``pool`` routes ``chain`` is the pool and its
    overflow pools in order and ``queue`` the queue ending the chain; for ``queue`` routes
    ``queue`` is the target; for ``owner``/``account_owner`` routes ``owner`` is the rep and
    ``owner_day`` its local day (its daily counter). ``due_by_rep`` overrides ``due_at`` for the
    rep who gets the lead (business-hours SLAs depend on whose hours count).
    """

    lead_id: str
    now: dt.datetime
    kind: str
    decision: bytes  # JSON, stored and published as is
    reason: str = ""  # the route's own reason (owner and queue routes report it)
    rule: str | None = None
    chain: tuple[PoolPlan, ...] = ()
    queue: str = "unassigned"
    owner: str | None = None
    owner_day: str | None = None
    sla_policy: str | None = None
    due_at: dt.datetime | None = None
    due_by_rep: dict[str, dt.datetime] = {}
    claims: tuple[Claim, ...] = ()  # the claims this request owns; finalised on commit
    engagement: EngagementLink | None = None
    person: str | None = None  # sha256 of the email: the erasure index (erasure.py)
    guards: tuple[Guard, ...] = ()  # Prefetched.guards: checked before anything is written
    # What the decision was made from (msgpack, router/services/decision_input.py), kept with
    # the lead with the facts the pick read, for the replay (router/state/inputs.py). b"":
    # nothing kept.
    input: bytes = b""
    # The list indexes (router/state/lists.py): status, territory, segment, grade, external
    # id ("" = none); () = not listed.
    lists: tuple[str, ...] = ()
    # The funnel groups (router/state/funnel.py) in keys.FUNNEL_DIMS order, pool and owner
    # left "" (the pick fills them); () = not counted.
    funnel: tuple[str, ...] = ()


class AssignResult(msgspec.Struct, frozen=True, kw_only=True):
    """What the commit did. ``status``: ``assigned`` / ``queued`` (committed now), ``exists``
    (this lead id was committed before; fields are the stored ones), ``duplicate`` / ``in_flight``
    (an idempotency key was taken over meanwhile by ``other_lead``; nothing was written),
    ``stale`` (a guard failed, nothing was written: decide again on
    ``Prefetched.reread(reads)``)."""

    lead_id: str
    status: Literal["assigned", "queued", "exists", "duplicate", "in_flight", "stale"]
    owner: str | None
    pool: str | None
    queue: str | None
    strategy: str | None
    reason: str
    assigned_at: dt.datetime
    due_at: dt.datetime | None
    other_lead: str | None = None
    # Engagement events arrived between the prefetch and the commit: re-score the lead.
    engagement_stale: bool = False
    reads: tuple[Any, ...] = ()  # status "stale": what the guarded keys really hold

    @property
    def committed(self) -> bool:
        return self.status in ("assigned", "queued")


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One thing that happened to a lead. Later events (accepted, reassigned, breached...) use
    the same fields; ``data`` carries anything else."""

    event: str
    at: dt.datetime
    owner: str | None = None
    pool: str | None = None
    queue: str | None = None
    strategy: str | None = None
    rule: str | None = None
    reason: str | None = None
    by: str | None = None
    data: dict[str, Any] = {}


class StoredLead(msgspec.Struct, frozen=True, kw_only=True):
    lead_id: str
    decision: msgspec.Raw  # the JSON the API stored at commit, embedded without re-decoding
    state: str  # assigned | queued | later: accepted, contacted, rejected, ...
    route: str
    owner: str | None
    pool: str | None
    queue: str | None
    strategy: str | None
    reason: str
    rule: str | None
    sla_policy: str | None
    assigned_at: dt.datetime
    updated_at: dt.datetime
    due_at: dt.datetime | None
    reassignments: int
    history: tuple[HistoryEntry, ...]
    # Live SLA facts (router/services/sla.py): the status after a recycle (nurture), where the
    # SLA clock stands (pending, met, late, breached, stopped; None = as the state says) and
    # every owner.
    status: str | None = None
    sla_state: str | None = None
    owners: tuple[str, ...] = ()
    # The live explanation a move after the commit left (lua/_sla.lua explain_move): JSON of
    # the explanation step of the current assignment and of the current status, shown over the
    # stored decision's steps; None = the decision's own steps still hold.
    route_step: str | None = None
    status_step: str | None = None


class RepState(msgspec.Struct, frozen=True, kw_only=True):
    rep: str
    status: RepStatus = "available"
    until: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    def available_at(self, now: dt.datetime) -> bool:
        """The commit script's rule: away/out of office end by themselves at ``until``."""
        return self.status == "available" or (self.until is not None and self.until <= now)


class MemberStats(msgspec.Struct, frozen=True, kw_only=True):
    rep: str
    weight: int
    eligible: bool
    why_not: tuple[str, ...]  # every reason, e.g. ("away", "at daily cap")
    status: str
    until: dt.datetime | None
    in_hours: bool
    local_day: str
    assigned_today: int
    daily_cap: int | None
    open: int
    assigned_in_pool: int
    credit: int  # smooth-WRR current weight


class PoolStats(msgspec.Struct, frozen=True, kw_only=True):
    pool: str
    strategy: str
    day: str  # UTC day of the pool cap
    used_today: int
    pool_cap: int | None
    last_assigned: str | None
    members: tuple[MemberStats, ...]


class TransitionResult(msgspec.Struct, frozen=True, kw_only=True):
    status: Literal["ok", "not_found", "conflict"]
    owner: str | None
    state: str | None
