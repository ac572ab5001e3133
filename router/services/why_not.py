"""Why X, why not Y: every rep of each pool a lead's pick considered, and what kept each one
from getting the lead — derived from what the commit recorded, never recomputed from today's
state.

The commit script (lua/commit.lua, lua/_pick.lua) keeps in the lead hash (field ``pick``) the
facts its pool pick read: per pool tried its day count, per member the live status, ``until``
and day count, the pool's rotation hash, least_loaded's open counts (router/state/inputs.py
:class:`~router.state.inputs.PickFacts`). What the pick also used but did not store — each
member's working hours at that minute, its effective daily cap, the pool's strategy and cap —
comes from the rules the lead was decided with: :func:`derive` is given that ruleset only when
its version is the decision's (else ``None``: the page says so and shows the recorded facts
alone, instead of guessing with other rules).

:func:`derive` is pure (facts, ruleset, the decision's time). The pick it explains is checked
against the recorded one with the replay's simulation of the commit script
(router/services/_replay_pick.py): ``consistent`` is False if they ever disagree.
:func:`read_pick` reads the recorded facts of one lead (one round trip).
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import msgspec

from router.engine.availability import MemberPlan, PoolPlan, pool_plan, utc_day
from router.engine.ruleset import Ruleset
from router.services._replay_pick import PickWorld, PoolState
from router.state.inputs import MemberSeen, PickFacts, PoolSeen, parse_pick, read_stored
from router.state.models import from_ms, to_ms
from router.state.store import Store

__all__ = ["MemberWhy", "PoolWhy", "WhyNot", "derive", "read_pick"]


class MemberWhy(msgspec.Struct, kw_only=True):
    """One pool member as the pick saw it. ``excluded``: why it could not take the lead (None:
    it was eligible); ``why``: for an eligible member, why it was or was not the one picked.
    ``in_hours``/``cap``/``weight``: None when the decision's rules are not at hand."""

    rep: str
    status: str
    until: dt.datetime | None
    today: int
    in_hours: bool | None = None
    cap: int | None = None
    weight: int | None = None
    excluded: str | None = None
    picked: bool = False
    why: str = ""


class PoolWhy(msgspec.Struct, kw_only=True):
    """One pool of the overflow chain: its strategy, day count against its cap, the members
    read (none when the pool was at its cap) and what happened there (``outcome``)."""

    pool: str
    strategy: str | None
    used: int
    pool_cap: int | None
    outcome: str
    members: list[MemberWhy]
    pointer: str = ""  # the rotation state the strategy started from


class WhyNot(msgspec.Struct, kw_only=True):
    owner: str | None
    pool: str | None
    queue: str | None
    pools: list[PoolWhy]
    rules_known: bool  # the decision's rules were at hand (hours, caps, weights shown)
    consistent: bool | None  # the simulated pick equals the recorded one (None: not checked)


_UNKNOWN = "(not known: the rules that decided this lead are not loaded)"


def _minute(now: dt.datetime) -> dt.datetime:
    """The plans are computed at the minute's start (router/engine/availability.PlanCache)."""
    return dt.datetime.fromtimestamp(int(now.timestamp()) // 60 * 60, dt.UTC)


def _excluded(seen: MemberSeen, plan: MemberPlan | None, now_ms: int) -> str | None:
    """The first reason of lua/_lib.lua ``member_facts`` that keeps the member out, or None."""
    status, until = seen.status, seen.until
    if status not in ("", "available") and not (until is not None and until <= now_ms):
        what = "out of office" if status == "out_of_office" else status
        return what + (f" until {from_ms(until):%Y-%m-%d %H:%M} UTC" if until else "")
    if plan is None:
        return None
    if not plan.in_hours:
        return "outside working hours"
    if plan.cap >= 0 and seen.today >= plan.cap:
        return f"at daily cap ({seen.today}/{plan.cap})"
    return None


def _rotation_start(members: tuple[MemberPlan, ...], state: PoolState) -> int:
    n = len(members)
    for i, m in enumerate(members):
        if m.rep == state.last:
            return (i + 1) % n
    return ((state.lastpos or 1) - 1) % n


def _pointer(p: PoolPlan, state: PoolState) -> str:
    start = p.members[_rotation_start(p.members, state)].rep
    if state.last is None:
        return f"no earlier pick in this pool: the rotation starts at {start}"
    return f"last picked {state.last}: the rotation starts at {start}"


def _ranked(p: PoolPlan, elig: list[int], state: PoolState, seen: PoolSeen
            ) -> list[tuple[int, tuple[Fraction, ...], str]]:
    """Eligible members in the order the strategy prefers them (``choose`` of _pick.lua),
    each with its sort key and what that key is made of."""
    members, n = p.members, len(p.members)
    start = _rotation_start(members, state)
    dist = {i: (i - start) % n for i in elig}
    counts = {i: state.n.get(members[i].rep, 0) for i in elig}
    if p.strategy == "round_robin":
        return sorted(((i, (Fraction(dist[i]),), f"{dist[i] + 1}. in the rotation")
                       for i in elig),
                      key=lambda t: t[1])
    if p.strategy == "weighted_round_robin":
        out: list[tuple[int, tuple[Fraction, ...], str]] = []
        for i in elig:
            m = members[i]
            cw = state.cw.get(m.rep, 0) + m.weight
            # higher credit first, then fewer assignments per weight, then rotation
            key = (Fraction(-cw), Fraction(counts[i], max(m.weight, 1)), Fraction(dist[i]))
            out.append((i, key, f"credit {cw} (weight {m.weight}), {counts[i]} assigned here"))
        return sorted(out, key=lambda t: t[1])
    maxn = max(counts.values())
    for i in elig:  # least_loaded keeps tie-break counts within one of the leader
        counts[i] = max(counts[i], maxn - 1)
    out = []  # same type as above
    for i in elig:
        rep = members[i].rep
        opened = seen.open.get(rep, 0)
        out.append((i, (Fraction(opened), Fraction(counts[i]), Fraction(dist[i])),
                    f"{opened} open lead(s), {counts[i]} assigned here"))
    return sorted(out, key=lambda t: t[1])


_COMPONENT = {"round_robin": ("later in the rotation",),
              "weighted_round_robin": ("less round-robin credit", "more assignments per weight",
                                       "later in the rotation"),
              "least_loaded": ("more open leads", "more assignments in the pool",
                               "later in the rotation")}


def _explain_choice(p: PoolPlan, members: list[MemberWhy], elig: list[int],
                    seen: PoolSeen, picked: str | None) -> str:
    state = PoolState(seen.state)
    ranked = _ranked(p, elig, state, seen)
    best_i, best_key, _ = ranked[0]
    best = p.members[best_i].rep
    names = _COMPONENT.get(p.strategy, _COMPONENT["least_loaded"])
    for i, key, facts in ranked:
        why = members[i]
        if i == best_i:
            why.why = f"picked by {p.strategy}: {facts}"
            continue
        differs = next((c for c in range(len(key)) if key[c] != best_key[c]), len(key) - 1)
        why.why = f"not picked: {names[min(differs, len(names) - 1)]} than {best} ({facts})"
    if picked is not None and picked != best:
        return f"recorded pick {picked} differs from the derivation ({best})"
    return ""


def _pool_why(seen: PoolSeen, plan: PoolPlan | None, picked: str | None, now_ms: int
              ) -> PoolWhy:
    plans = {m.rep: m for m in plan.members} if plan is not None else {}
    members = []
    for m in seen.members:
        mp = plans.get(m.rep)
        members.append(MemberWhy(
            rep=m.rep, status=m.status or "available",
            until=from_ms(m.until) if m.until else None, today=m.today,
            in_hours=mp.in_hours if mp else None,
            cap=(mp.cap if mp.cap >= 0 else None) if mp else None,
            weight=mp.weight if mp else None, excluded=_excluded(m, mp, now_ms),
            picked=m.rep == picked))
    cap = plan.pool_cap if plan is not None and plan.pool_cap >= 0 else None
    out = PoolWhy(pool=seen.pool, strategy=plan.strategy if plan else None, used=seen.used,
                  pool_cap=cap, outcome="", members=members)
    if not seen.members:
        out.outcome = f"at its pool daily cap ({seen.used}/{cap if cap is not None else '?'})"
        return out
    if plan is None:
        out.outcome = f"picked {picked}" if picked else "nobody picked"
        for w in members:
            if w.excluded is None and not w.picked:
                w.why = "eligible as far as recorded; working hours and caps " + _UNKNOWN
        return out
    # the plan's member order is the script's (rotation positions)
    order = {m.rep: i for i, m in enumerate(plan.members)}
    by_index = {order[w.rep]: w for w in members if w.rep in order}
    elig = sorted(i for i, w in by_index.items() if w.excluded is None)
    if not elig:
        out.outcome = "nobody eligible"
        return out
    state = PoolState(seen.state)
    out.pointer = _pointer(plan, state)
    full = [by_index.get(i) or MemberWhy(rep=m.rep, status="", until=None, today=0)
            for i, m in enumerate(plan.members)]
    mismatch = _explain_choice(plan, full, elig, seen, picked)
    out.outcome = f"picked {picked}" if picked else "picked"
    if mismatch:
        out.outcome += f" — {mismatch}"
    return out


def derive(facts: PickFacts, ruleset: Ruleset | None, now: dt.datetime) -> WhyNot:
    """Why the recorded pick went as it did. ``ruleset``: the rules the lead was decided with
    (None when they are not the running ones); ``now``: the decision's time."""
    now_ms = to_ms(now)
    start = _minute(now)
    plans: list[PoolPlan | None] = []
    for seen in facts.pools:
        spec = ruleset.pools.get(seen.pool) if ruleset is not None else None
        plans.append(pool_plan(spec, ruleset.reps, start)
                     if spec is not None and ruleset is not None else None)
    pools = []
    for seen, plan in zip(facts.pools, plans, strict=True):
        picked = facts.owner if facts.pool == seen.pool else None
        pools.append(_pool_why(seen, plan, picked, now_ms))
    consistent = None
    known = [p for p in plans if p is not None]
    if ruleset is not None and facts.pools and len(known) == len(plans):
        world = PickWorld()
        world.observe(facts, utc_day(start), {m.rep: m.day for p in known for m in p.members})
        owner, pool, _ = world.pick(tuple(known), facts.queue or "", now_ms)
        consistent = (owner, pool) == (facts.owner, facts.pool) or (
            owner is None and facts.owner is None)
    return WhyNot(owner=facts.owner, pool=facts.pool, queue=facts.queue, pools=pools,
                  rules_known=ruleset is not None, consistent=consistent)


async def read_pick(store: Store, lead_id: str) -> PickFacts | None:
    """The pick facts the commit recorded for ``lead_id``, None when none were kept (a lead
    stored before they were, by a caller keeping no inputs, or expired)."""
    stored = (await read_stored(store, [(lead_id, 0)]))[0]
    if stored.missing or not stored.pick:
        return None
    try:
        return parse_pick(stored.pick)
    except ValueError:
        return None
