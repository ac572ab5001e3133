"""SLA state (router/state/sla.py) on real Valkey: claiming due deadlines exactly once with a
lease, reading a lead's SLA fields, owner actions checked against what was read, the facts."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from router.engine.availability import MemberPlan, PoolPlan
from router.state import CommitPlan, Store
from router.state.sla import SlaState

pytestmark = pytest.mark.anyio

DAY = "2026-03-02"
NOW = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)
POOL = PoolPlan(id="p", strategy="round_robin", pool_cap=-1, day=DAY,
                members=(MemberPlan("a", 1, True, DAY, -1), MemberPlan("b", 1, True, DAY, -1)))


async def _lead(store: Store, lead_id: str, due: dt.datetime) -> str:
    result = await store.commit(CommitPlan(lead_id=lead_id, now=NOW, kind="pool",
                                           decision=b"{}", chain=(POOL,), due_at=due,
                                           sla_policy="hot"))
    assert result.status == "assigned" and result.owner
    return result.owner


async def test_due_leads_are_claimed_once_per_lease(store: Store) -> None:
    sla = SlaState(store)
    await _lead(store, "L1", NOW + 10 * MINUTE)
    await _lead(store, "L2", NOW + 20 * MINUTE)
    lease = dt.timedelta(seconds=30)

    _, none = await sla.claim_due(NOW + 5 * MINUTE, lease=lease, batch=10)
    assert none == []
    at = NOW + 10 * MINUTE
    fence, due = await sla.claim_due(at, lease=lease, batch=10)
    assert due == ["L1"]  # a deadline at `now` is due; L2's is not yet
    assert fence >= int(at.timestamp() * 1000)
    assert (await sla.claim_due(at, lease=lease, batch=10))[1] == []  # claimed: not again
    # the lease runs out without an escalation: the lead is claimed again
    assert (await sla.claim_due(at + lease + MINUTE, lease=lease, batch=10))[1] == ["L1"]

    later = NOW + 30 * MINUTE + 2 * lease
    assert (await sla.claim_due(later, lease=lease, batch=1))[1] in (["L1"], ["L2"])
    assert len((await sla.claim_due(later, lease=lease, batch=10))[1]) == 1  # the other one


async def test_read_lead_gives_the_sla_fields(store: Store) -> None:
    sla = SlaState(store)
    owner = await _lead(store, "L1", NOW + 10 * MINUTE)
    lead = await sla.read_lead("L1")
    assert lead is not None
    assert (lead.lead_id, lead.state, lead.owner, lead.pool, lead.policy) == \
        ("L1", "assigned", owner, "p", "hot")
    assert lead.due_at == NOW + 10 * MINUTE
    assert lead.due_ms == int((NOW + 10 * MINUTE).timestamp() * 1000)
    assert lead.owners == (owner,) and lead.reassignments == 0
    assert lead.assigned_at == NOW and lead.accepted_at is None
    assert await sla.read_lead("nope") is None
    assert await sla.read_leads([]) == []
    assert [x and x.lead_id for x in await sla.read_leads(["nope", "L1"])] == [None, "L1"]


async def test_accept_by_the_owner_meets_the_sla_and_records_a_fact(store: Store) -> None:
    sla = SlaState(store)
    owner = await _lead(store, "L1", NOW + 10 * MINUTE)
    lead = await sla.read_lead("L1")
    assert lead is not None
    done = await sla.owner_action(lead, action="accept", rep=owner, now=NOW + 2 * MINUTE)
    assert (done.status, done.owner, done.state) == ("ok", owner, "accepted")
    # acting on what was read before: the lead has changed since, nothing is applied
    stale = await sla.owner_action(lead, action="reject", rep=owner, now=NOW + 3 * MINUTE,
                                   reason="no_budget")
    assert (stale.status, stale.owner, stale.state) == ("changed", owner, "accepted")
    gone = msgspec.structs.replace(lead, lead_id="gone")
    assert (await sla.owner_action(gone, action="accept", rep=owner, now=NOW)).status == \
        "not_found"
    after = await sla.read_lead("L1")
    assert after is not None and after.accepted_at == NOW + 2 * MINUTE
    # accepted: no longer due
    assert (await sla.claim_due(NOW + 11 * MINUTE, lease=MINUTE, batch=10))[1] == []

    facts = await sla.facts(NOW - MINUTE, NOW + 3 * MINUTE)
    kinds = [f.kind for f in facts]
    assert "accept" in kinds
    accept = facts[kinds.index("accept")]
    assert (accept.lead_id, accept.policy, accept.owner, accept.in_time) == \
        ("L1", "hot", owner, True)
    assert accept.tta_ms == 2 * 60_000
    assert accept.at == NOW + 2 * MINUTE
    assert await sla.facts(NOW + 5 * MINUTE, NOW + 6 * MINUTE) == []  # a time range


async def test_facts_are_read_in_pages(store: Store) -> None:
    sla = SlaState(store)
    for i in range(5):
        await _lead(store, f"L{i}", NOW + 10 * MINUTE)
    every = await sla.facts(NOW - MINUTE, NOW + MINUTE)
    assert len(every) >= 5
    before = store.round_trips
    paged = await sla.facts(NOW - MINUTE, NOW + MINUTE, page=2)
    assert paged == every
    assert store.round_trips - before == len(every) // 2 + 1
