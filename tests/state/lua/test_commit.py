"""The commit script (router/state/lua/commit.lua) against a real Valkey: owner and queue
routes, the SLA due time of the rep picked, everything a commit stores, exactly once per lead
id. The pool pick itself: tests/state/lua/test_pick.py."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import redis
from _pools import DAY, NOW, assign, m, pool

from router.state import CommitPlan, Store

pytestmark = pytest.mark.anyio


async def test_owner_route_wins_over_availability_and_counts(store: Store) -> None:
    await store.put_rep("alice", "out_of_office")
    plan = CommitPlan(lead_id="owned-1", now=NOW, kind="account_owner", decision=b"{}",
                      owner="alice", owner_day=DAY, reason="acme.com is owned by alice")
    r = await store.commit(plan)
    assert (r.status, r.owner, r.reason) == ("assigned", "alice", "acme.com is owned by alice")
    stats = await store.pool_stats(pool("p", m("alice", cap=1)), NOW)
    (alice,) = stats.members
    assert alice.assigned_today == 1 and alice.open == 1
    assert alice.why_not == ("out of office", "at daily cap")


async def test_queue_route(store: Store, redis_client: redis.Redis) -> None:
    plan = CommitPlan(lead_id="q-1", now=NOW, kind="queue", queue="nurture", decision=b"{}",
                      reason="nurture leads wait")
    r = await store.commit(plan)
    assert (r.status, r.queue, r.owner) == ("queued", "nurture", None)
    assert redis_client.zscore("lr:{lr}:queue:nurture", "q-1") == NOW.timestamp() * 1000


async def test_sla_due_per_candidate_rep(store: Store, redis_client: redis.Redis) -> None:
    default = NOW + dt.timedelta(hours=1)
    for_b = NOW + dt.timedelta(hours=15)  # b's business hours start tomorrow
    p = pool("p", m("a"), m("b"))
    r1 = await assign(store, p, due_at=default, due_by_rep={"b": for_b}, sla_policy="hot")
    r2 = await assign(store, p, due_at=default, due_by_rep={"b": for_b}, sla_policy="hot")
    assert (r1.owner, r1.due_at) == ("a", default)
    assert (r2.owner, r2.due_at) == ("b", for_b)
    assert redis_client.zscore("lr:{lr}:sla:due", r2.lead_id) == for_b.timestamp() * 1000
    # The lead outlives its deadline by the retention.
    assert redis_client.pttl(f"lr:{{lr}}:lead:{r2.lead_id}") > 24 * 3600_000


async def test_commit_stores_everything(store: Store, redis_client: redis.Redis,
                                        outbox_sink: str) -> None:
    r = await assign(store, pool("p", m("a")), rule="na-ent", sla_policy="std",
                     due_at=NOW + dt.timedelta(minutes=5))
    lead = await store.get_lead(r.lead_id)
    assert lead is not None
    assert json.loads(bytes(lead.decision)) == {"s": 1}
    assert (lead.owner, lead.pool, lead.strategy, lead.rule, lead.sla_policy, lead.state) == (
        "a", "p", "round_robin", "na-ent", "std", "assigned")
    assert lead.assigned_at == NOW and lead.due_at == NOW + dt.timedelta(minutes=5)
    assert [(h.event, h.owner) for h in lead.history] == [("created", None), ("assigned", "a")]
    assert lead.history[0].rule == "na-ent"
    (entry,) = redis_client.xrange("lr:{lr}:outbox")[-1:]
    fields = entry[1]
    assert fields[b"type"] == b"lead.assigned" and fields[b"lead_id"] == r.lead_id.encode()
    assert fields[b"owner"] == b"a" and json.loads(fields[b"decision"]) == {"s": 1}


async def test_same_lead_id_is_never_committed_twice(store: Store) -> None:
    p = pool("p", m("a"), m("b"))
    plan = CommitPlan(lead_id="twice", now=NOW, kind="pool", decision=b"{}", chain=(p,))
    first, second = await store.commit(plan), await store.commit(plan)
    assert (first.status, second.status) == ("assigned", "exists")
    assert second.owner == first.owner == "a"
    assert (await assign(store, p)).owner == "b"  # the rotation did not move for the repeat
