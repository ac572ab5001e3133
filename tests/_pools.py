"""Pool plans for the Lua script tests (tests/state/lua/): members, pools, and one commit of a
pool-routed lead, so the pick and the commit tests build their plans the same way."""

from __future__ import annotations

import datetime as dt
import itertools

from router.engine.availability import MemberPlan, PoolPlan
from router.state import AssignResult, CommitPlan, Store

DAY = "2026-03-02"
NOW = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
_ids = itertools.count()


def m(rep: str, weight: int = 1, *, in_hours: bool = True, cap: int = -1,
      day: str = DAY) -> MemberPlan:
    return MemberPlan(rep, weight, in_hours, day, cap)


def pool(pool_id: str, *members: MemberPlan, strategy: str = "round_robin",
         pool_cap: int = -1) -> PoolPlan:
    return PoolPlan(id=pool_id, strategy=strategy, pool_cap=pool_cap, day=DAY, members=members)


async def assign(store: Store, *chain: PoolPlan, queue: str = "unassigned",
                 now: dt.datetime = NOW, **extra: object) -> AssignResult:
    plan = CommitPlan(lead_id=f"lead-{next(_ids)}", now=now, kind="pool", decision=b'{"s":1}',
                      chain=chain, queue=queue, **extra)  # type: ignore[arg-type]
    return await store.commit(plan)


async def owners(store: Store, n: int, *chain: PoolPlan) -> list[str | None]:
    return [(await assign(store, *chain)).owner for _ in range(n)]
