"""The pool pick of router/state/lua/_pick.lua, simulated in Python for the replay (pure).

:class:`PickWorld` holds the simulated pool state (rotation ``last``/``lastpos``, smooth-WRR
credits ``cw:``, assignment counts ``n:``), the pools' and reps' day counters, the reps' open
counts and their availability, and picks among a plan's chain exactly as the commit script
does: round robin, smooth weighted round robin, least_loaded with its tie-breaks, daily caps
per rep and per pool, away / out of office with ``until``, working hours (the plan's
``in_hours``), the overflow chain and the queue ending it.

Where the state comes from: each stored lead carries what its own pick read
(router/state/inputs.py :class:`PickFacts`). Before each lead, :meth:`PickWorld.observe` takes
those facts as the state of every pool and rep the replay has not yet diverged on — so the
first lead in the window that saw a pool gives its starting state, and reassignments or
accepts between two leads (which the replay does not see) are taken in as they happened. Once
the replay's pick differs from the original one (:meth:`PickWorld.settle`), the pools and reps
involved carry the replay's own state from then on: its picks move counters and rotation, so
later owner changes are consequences, not noise. Availability (status, until) is always the
observed fact. A rep or pool never observed starts empty (available, no counts).

The test tests/services/test_replay_pick.py runs the same scenarios through the real commit
script and this simulation and asserts identical picks.
"""

from __future__ import annotations

from collections.abc import Mapping

from router.engine.availability import MemberPlan, PoolPlan
from router.state.inputs import PickFacts

__all__ = ["PickWorld", "Picked", "PoolState"]

Picked = tuple[str | None, str | None, str | None]  # owner, pool, queue


class PoolState:
    """A pool hash (``{pool:ID}``) as the script reads it."""

    __slots__ = ("cw", "last", "lastpos", "n")

    def __init__(self, fields: Mapping[str, str] | None = None) -> None:
        self.last: str | None = None
        self.lastpos: int | None = None
        self.cw: dict[str, int] = {}
        self.n: dict[str, int] = {}
        for f, v in (fields or {}).items():
            if f == "last":
                self.last = v
            elif f == "lastpos":
                self.lastpos = int(v)
            elif f.startswith("cw:"):
                self.cw[f[3:]] = int(v)
            elif f.startswith("n:"):
                self.n[f[2:]] = int(v)


class PickWorld:
    def __init__(self) -> None:
        self.pools: dict[str, PoolState] = {}
        self.pool_day: dict[tuple[str, str], int] = {}
        self.rep_day: dict[tuple[str, str], int] = {}
        self.open: dict[str, int] = {}
        self.status: dict[str, tuple[str, int | None]] = {}
        self.diverged_pools: set[str] = set()
        self.diverged_reps: set[str] = set()

    # -- the stored facts ---------------------------------------------------------------------

    def observe(self, facts: PickFacts, pool_day: str, rep_days: Mapping[str, str]) -> None:
        """Take what a stored lead's pick read as the state of every pool and rep not diverged.
        ``pool_day``: the UTC day; ``rep_days``: each rep's local day (from the plan)."""
        for seen in facts.pools:
            pool = seen.pool
            synced = pool not in self.diverged_pools
            if synced:
                self.pool_day[(pool, pool_day)] = seen.used
                if seen.state is not None:
                    self.pools[pool] = PoolState(seen.state)
            for m in seen.members:
                self.status[m.rep] = (m.status, m.until)
                if m.rep in self.diverged_reps:
                    continue
                day = rep_days.get(m.rep)
                if day is not None:
                    self.rep_day[(m.rep, day)] = m.today
            for rep, count in seen.open.items():
                if rep not in self.diverged_reps:
                    self.open[rep] = count

    def settle(self, before: Picked, after: Picked) -> None:
        """After a lead: if the replay's pick differs from the original one, the pools and reps
        involved follow the replay's own state from now on."""
        if before[:2] == after[:2]:
            return
        for pool in (before[1], after[1]):
            if pool:
                self.diverged_pools.add(pool)
        for rep in (before[0], after[0]):
            if rep:
                self.diverged_reps.add(rep)

    # -- the pick -----------------------------------------------------------------------------

    def count(self, rep: str, day: str) -> None:
        """An assignment to ``rep`` (a pick, or an owner route): its day counter and open set."""
        key = (rep, day)
        self.rep_day[key] = self.rep_day.get(key, 0) + 1
        self.open[rep] = self.open.get(rep, 0) + 1

    def pick(self, chain: tuple[PoolPlan, ...], queue: str, now_ms: int) -> Picked:
        """Walk the overflow chain like ``pick_chain``: (owner, pool, None) or (None, None,
        queue)."""
        for p in chain:
            rep = self._try_pool(p, now_ms)
            if rep is not None:
                return rep, p.id, None
        return None, None, queue

    def _why_not(self, m: MemberPlan, now_ms: int) -> bool:
        status, until = self.status.get(m.rep, ("", None))
        if status not in ("", "available") and not (until is not None and until <= now_ms):
            return True
        if not m.in_hours:
            return True
        return m.cap >= 0 and self.rep_day.get((m.rep, m.day), 0) >= m.cap

    def _try_pool(self, p: PoolPlan, now_ms: int) -> str | None:
        used = self.pool_day.get((p.id, p.day), 0)
        if p.pool_cap >= 0 and used >= p.pool_cap:
            return None
        elig = [i for i, m in enumerate(p.members) if not self._why_not(m, now_ms)]
        if not elig:
            return None
        state = self.pools.get(p.id)
        if state is None:
            state = self.pools[p.id] = PoolState()
        best, counts = _choose(p, elig, state, self.open)
        member = p.members[best]
        state.last, state.lastpos = member.rep, best + 1
        state.n[member.rep] = counts[best] + 1
        self.pool_day[(p.id, p.day)] = used + 1
        self.count(member.rep, member.day)
        return member.rep


def _choose(p: PoolPlan, elig: list[int], state: PoolState, open_counts: Mapping[str, int]
            ) -> tuple[int, dict[int, int]]:
    """``choose`` of _pick.lua (0-based indexes here; the script's are 1-based, and so is the
    stored ``lastpos``). Updates ``state`` (credits, least_loaded's count floor)."""
    members = p.members
    n = len(members)
    start = _rotation_start(members, state.last, state.lastpos)  # 0-based

    def dist(i: int) -> int:
        return (i - start) % n

    counts = {i: state.n.get(members[i].rep, 0) for i in elig}
    if p.strategy == "round_robin":
        return min(elig, key=dist), counts
    if p.strategy == "weighted_round_robin":
        cw = {i: state.cw.get(members[i].rep, 0) + members[i].weight for i in elig}
        total = sum(members[i].weight for i in elig)
        best = elig[0]
        for i in elig:
            if i == best:
                continue
            better = cw[i] > cw[best]
            if cw[i] == cw[best]:
                a, b = counts[i] * members[best].weight, counts[best] * members[i].weight
                better = a < b or (a == b and dist(i) < dist(best))
            if better:
                best = i
        cw[best] -= total
        for i in elig:
            state.cw[members[i].rep] = cw[i]
        return best, counts
    # least_loaded
    maxn = max(counts.values())
    for i in elig:
        if counts[i] < maxn - 1:
            counts[i] = maxn - 1
            state.n[members[i].rep] = maxn - 1
    best_i: int | None = None
    best_key = (0, 0, 0)
    for i in elig:
        key = (open_counts.get(members[i].rep, 0), counts[i], dist(i))
        if best_i is None or key < best_key:
            best_i, best_key = i, key
    assert best_i is not None
    return best_i, counts


def _rotation_start(members: tuple[MemberPlan, ...], last: str | None,
                    lastpos: int | None) -> int:
    n = len(members)
    for i, m in enumerate(members):
        if m.rep == last:
            return (i + 1) % n
    return ((lastpos or 1) - 1) % n
