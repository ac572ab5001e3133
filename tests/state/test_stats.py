"""Cluster-wide backlog figures (router/state/stats.py) read from real leads on real Valkey."""

from __future__ import annotations

import datetime as dt

import pytest

from router.engine.availability import MemberPlan, PoolPlan
from router.state import CommitPlan, StateUnavailable, Store
from router.state.stats import Backlog, backlog

pytestmark = pytest.mark.anyio

DAY = "2026-03-02"
NOW = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
POOL = PoolPlan(id="p", strategy="round_robin", pool_cap=-1, day=DAY,
                members=(MemberPlan("a", 1, True, DAY, -1), MemberPlan("b", 1, True, DAY, -1)))


async def _leads(store: Store) -> None:
    for i, due in enumerate((NOW + HOUR, NOW + 2 * HOUR, NOW + 3 * HOUR)):
        result = await store.commit(CommitPlan(lead_id=f"S{i}", now=NOW, kind="pool",
                                               decision=b"{}", chain=(POOL,), due_at=due,
                                               sla_policy="hot"))
        assert result.status == "assigned"
    for i, queue in enumerate(("triage", "triage", "review")):
        result = await store.commit(CommitPlan(lead_id=f"Q{i}", now=NOW, kind="queue",
                                               queue=queue, decision=b"{}"))
        assert result.status == "queued"
    # a lead without an SLA adds to neither figure
    await store.commit(CommitPlan(lead_id="N", now=NOW, kind="pool", decision=b"{}",
                                  chain=(POOL,)))


async def test_an_empty_database_has_no_backlog(store: Store) -> None:
    assert await backlog(store, ["triage"], NOW) == Backlog(sla_pending=0, sla_overdue=0,
                                                            queues={"triage": 0})


async def test_backlog_counts_running_slas_overdue_ones_and_queue_depths(store: Store) -> None:
    await _leads(store)
    queues = ["triage", "review", "empty", "triage"]
    now = await backlog(store, queues, NOW)
    assert (now.sla_pending, now.sla_overdue) == (3, 0)
    assert now.queues == {"empty": 0, "review": 1, "triage": 2}
    assert list(now.queues) == ["empty", "review", "triage"]  # sorted, once each
    # a deadline exactly at `now` is overdue; later ones are not yet
    assert (await backlog(store, [], NOW + 2 * HOUR)).sla_overdue == 2
    assert (await backlog(store, [], NOW + 2 * HOUR - dt.timedelta(milliseconds=1))
            ).sla_overdue == 1
    later = await backlog(store, [], NOW + 5 * HOUR)
    assert (later.sla_pending, later.sla_overdue, later.queues) == (3, 3, {})


async def test_backlog_is_one_round_trip(store: Store) -> None:
    before = store.round_trips
    await backlog(store, ["a", "b", "c"], NOW)
    assert store.round_trips == before + 1


async def test_backlog_without_redis_is_state_unavailable() -> None:
    dead = await Store.connect("redis://127.0.0.1:1/0", verify=False, connect_timeout=0.2)
    try:
        with pytest.raises(StateUnavailable):
            await backlog(dead, ["triage"], NOW)
    finally:
        await dead.close()
