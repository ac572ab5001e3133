"""router/state/directory.py against a real Valkey: account ownership, reps' live state and what
a pool's members look like to the commit (pool_stats)."""

from __future__ import annotations

import datetime as dt

import pytest

from router.engine.availability import MemberPlan, PoolPlan
from router.state import CommitPlan, Store

pytestmark = pytest.mark.anyio

DAY = "2026-03-02"
NOW = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)


async def test_accounts(store: Store) -> None:
    assert await store.get_account("acme.com") is None
    await store.put_account("ACME.com", "alice")
    assert await store.get_account("acme.com") == "alice"
    assert (await store.prefetch(account_domain="Acme.COM")).account_owner == "alice"
    assert await store.delete_account("acme.com") is True
    assert await store.delete_account("acme.com") is False
    assert (await store.prefetch(account_domain="acme.com")).account_owner is None


async def test_rep_state(store: Store) -> None:
    fresh = await store.get_rep("alice")
    assert (fresh.status, fresh.until, fresh.updated_at) == ("available", None, None)
    until = NOW + dt.timedelta(days=3)
    await store.put_rep("alice", "out_of_office", until=until, now=NOW)
    got = await store.get_rep("alice")
    assert (got.status, got.until, got.updated_at) == ("out_of_office", until, NOW)
    assert not got.available_at(NOW) and got.available_at(until)
    await store.put_rep("alice", "available")
    assert (await store.get_rep("alice")).until is None
    with pytest.raises(ValueError, match="unknown rep status"):
        await store.put_rep("alice", "vacation")  # type: ignore[arg-type]


async def test_pool_stats_reasons(store: Store) -> None:
    await store.put_rep("a", "away", until=NOW + dt.timedelta(hours=1))
    p = PoolPlan(id="p", strategy="least_loaded", pool_cap=10, day=DAY, members=(
        MemberPlan("a", 2, False, DAY, 5), MemberPlan("b", 1, True, DAY, 1)))
    await store.commit(CommitPlan(lead_id="L1", now=NOW, kind="pool", decision=b"{}",
                                  chain=(p,)))
    stats = await store.pool_stats(p, NOW)
    a, b = stats.members
    assert (a.eligible, a.why_not, a.status, a.until) == (
        False, ("away", "outside working hours"), "away", NOW + dt.timedelta(hours=1))
    assert (b.eligible, b.why_not, b.assigned_today, b.open, b.daily_cap) == (
        False, ("at daily cap",), 1, 1, 1)
    assert (stats.used_today, stats.pool_cap, stats.last_assigned) == (1, 10, "b")


