"""Who in a pool could take a lead *now*, as far as the rule files can tell: pure calendar math.

Working hours and the daily cap's "day" are in each rep's own time zone, so "now" means
something different per member. This module turns a pool and ``now`` (always passed in, never
read from a clock) into a :class:`PoolPlan`: per member the facts that do not need live state
(inside working hours, local day, effective daily cap). The state layer's commit script adds the
live facts (availability, today's counts) and picks atomically.

The plans only change when the minute changes (working hours are given in minutes and every
zone offset is a whole number of minutes), and then only at a member's working-hours edge or
midnight, so :class:`PlanCache` keeps each chain's plan until the next such minute: a zone
conversion costs ~1 µs and a 3-pool overflow chain has a dozen members.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import lru_cache
from zoneinfo import ZoneInfo

import msgspec

from router.engine.ruleset import PoolSpec, RepSpec, Ruleset

__all__ = [
    "MemberPlan",
    "PlanCache",
    "PoolPlan",
    "chain_plan",
    "effective_cap",
    "in_working_hours",
    "local_day",
    "member_plan",
    "pool_plan",
    "utc_day",
]

_UTC = dt.UTC


class MemberPlan(msgspec.Struct, frozen=True, array_like=True):
    """One pool member as seen at one minute. ``array_like``: it is sent to Lua as a JSON array."""

    rep: str
    weight: int
    in_hours: bool  # True when the pool ignores working hours
    day: str  # the rep's local day, "YYYY-MM-DD": names the daily counter
    cap: int  # effective daily cap; -1 = none


class PoolPlan(msgspec.Struct, frozen=True, kw_only=True):
    """A pool as the commit script needs it: strategy, caps and the members' precomputed facts."""

    id: str
    strategy: str
    pool_cap: int  # pool_daily_cap per UTC day; -1 = none
    day: str  # the UTC day of ``pool_cap``
    members: tuple[MemberPlan, ...]


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _local(tz: str, now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None:
        # A naive time would silently mean the server's zone; every caller has an aware one.
        raise ValueError("now must be timezone-aware")
    return now.astimezone(_zone(tz))


def in_working_hours(rep: RepSpec, now: dt.datetime) -> bool:
    """``now`` falls inside one of the rep's working intervals for its local weekday.

    Intervals are half-open ``[start, end)`` minutes since local midnight, so 09:00-17:00 ends
    at 16:59. Overnight shifts are split into two days by the loader, hence no wrap-around here.
    A rep with no working hours configured at all is not restricted by hours (otherwise a pool
    that respects hours could silently never pick them).
    """
    if not any(rep.hours):
        return True
    local = _local(rep.timezone, now)
    minute = local.hour * 60 + local.minute
    return any(start <= minute < end for start, end in rep.hours[local.weekday()])


def local_day(rep: RepSpec | None, now: dt.datetime) -> str:
    """The rep's calendar day at ``now`` (UTC for an unknown rep, e.g. an account owner who is
    not in reps.yaml): the daily cap resets at the rep's own midnight."""
    if rep is None:
        return utc_day(now)
    return _local(rep.timezone, now).date().isoformat()


def utc_day(now: dt.datetime) -> str:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(_UTC).date().isoformat()


def effective_cap(pool_cap: int | None, rep_cap: int | None) -> int | None:
    """The tighter of the pool's per-member cap and the rep's own cap (None = no cap)."""
    if pool_cap is None:
        return rep_cap
    if rep_cap is None:
        return pool_cap
    return min(pool_cap, rep_cap)


def member_plan(pool: PoolSpec, rep: RepSpec, weight: int, now: dt.datetime) -> MemberPlan:
    cap = effective_cap(pool.daily_cap, rep.daily_cap)
    return MemberPlan(
        rep=rep.id,
        weight=weight,
        in_hours=in_working_hours(rep, now) if pool.working_hours else True,
        day=local_day(rep, now),
        cap=-1 if cap is None else cap,
    )


def pool_plan(pool: PoolSpec, reps: Mapping[str, RepSpec], now: dt.datetime) -> PoolPlan:
    """The pool at ``now``. Members missing from ``reps`` are skipped: the loader rejects such
    pools, so this only guards against a hand-built ruleset."""
    return PoolPlan(
        id=pool.id,
        strategy=pool.strategy,
        pool_cap=-1 if pool.pool_daily_cap is None else pool.pool_daily_cap,
        day=utc_day(now),
        members=tuple(member_plan(pool, reps[rep], weight, now)
                      for rep, weight in pool.members if rep in reps),
    )


def chain_plan(pools: Mapping[str, PoolSpec], reps: Mapping[str, RepSpec], pool_id: str,
               now: dt.datetime) -> tuple[tuple[PoolPlan, ...], str]:
    """The pool and its overflow pools in order, and the queue that ends the chain.

    The loader guarantees the chain has no loop; the ``seen`` check keeps a hand-built ruleset
    from looping forever anyway.
    """
    plans: list[PoolPlan] = []
    seen: set[str] = set()
    current: str | None = pool_id
    queue = "unassigned"
    while current is not None and current not in seen:
        seen.add(current)
        pool = pools.get(current)
        if pool is None:
            queue = current  # an unknown pool id: treat it as a queue rather than lose the lead
            break
        plans.append(pool_plan(pool, reps, now))
        if pool.overflow_kind == "pool":
            current = pool.overflow
        else:
            queue = pool.overflow
            current = None
    return tuple(plans), queue


class PlanCache:
    """Memo of :func:`chain_plan` for one ruleset (make a new one on reload).

    Still pure from the caller's point of view: the same (pool, minute) always gives the same
    plan, the one :func:`chain_plan` gives at the minute's start. A plan is kept for as long as
    it stays that one: until the first minute at which a member's working hours start or end,
    a member's local day or the UTC day changes (:func:`_plan_lasts`), so leads spread over an
    afternoon share one plan instead of computing one a minute. One entry per pool.
    """

    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        # pool id → (first minute, minute after the last, plan)
        self._plans: dict[str, tuple[int, int, tuple[tuple[PoolPlan, ...], str]]] = {}

    def chain(self, pool_id: str, now: dt.datetime) -> tuple[tuple[PoolPlan, ...], str]:
        minute = int(now.timestamp()) // 60
        hit = self._plans.get(pool_id)
        if hit is not None and hit[0] <= minute < hit[1]:
            return hit[2]
        # Computed for the minute's start so every caller within the minute agrees.
        start = dt.datetime.fromtimestamp(minute * 60, _UTC)
        pools, reps = self.ruleset.pools, self.ruleset.reps
        plan = chain_plan(pools, reps, pool_id, start)
        self._plans[pool_id] = (minute, minute + _plan_lasts(pools, reps, plan[0], start), plan)
        return plan


def _plan_lasts(pools: Mapping[str, PoolSpec], reps: Mapping[str, RepSpec],
                plans: tuple[PoolPlan, ...], start: dt.datetime) -> int:
    """For how many minutes from ``start`` (a minute's start) :func:`chain_plan` gives the
    same plans: up to the next UTC midnight and each member's next local midnight and, in a
    pool that respects hours, the next start or end of one of its working intervals. Local
    wall-clock minutes equal elapsed minutes unless the zone's offset changes meanwhile: then
    (offsets differ at both ends) the plan is kept for its minute only."""
    lasts = 1440 - (start.hour * 60 + start.minute)  # start is UTC
    for plan in plans:
        hours = pools[plan.id].working_hours
        for m in plan.members:
            rep = reps[m.rep]
            zone = _zone(rep.timezone)
            local = start.astimezone(zone)
            now = local.hour * 60 + local.minute
            until = 1440
            if hours:
                for a, b in rep.hours[local.weekday()]:
                    if now < a < until:
                        until = a
                    if now < b < until:
                        until = b
            lasts = min(lasts, until - now)
            end = start + dt.timedelta(minutes=lasts - 1)
            if lasts > 1 and end.astimezone(zone).utcoffset() != local.utcoffset():
                return 1
    return max(lasts, 1)
