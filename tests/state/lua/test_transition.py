"""lua/transition.lua, the generic compare-and-set move of a lead: a move to another owner or
queue, or a new status, leaves the live explanation the SLA moves leave (lua/_sla.lua
``explain_move``): the entry's reason as the lead's ``reason`` and as the explanation step of
the assignment / the status, which GET /v1/leads/{id} shows over the stored decision's. Real
Valkey."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from router.engine.availability import MemberPlan, PoolPlan
from router.state import CommitPlan, HistoryEntry, Store

pytestmark = pytest.mark.anyio

DAY = "2026-03-02"
NOW = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
POOL = PoolPlan(id="p", strategy="round_robin", pool_cap=-1, day=DAY,
                members=(MemberPlan("a", 1, True, DAY, -1),))


async def test_a_move_leaves_its_reason_as_the_live_explanation(store: Store) -> None:
    committed = await store.commit(CommitPlan(lead_id="L1", now=NOW, kind="pool",
                                              decision=b"{}", chain=(POOL,)))
    assert (committed.owner, committed.reason) == ("a", "picked by round_robin")
    why = "handed to the triage desk by ops"
    moved = await store.transition(
        "L1", now=NOW, new_state="queued", expected_owner="a",
        entry=HistoryEntry(event="requeued", at=NOW, queue="triage", reason=why),
        fields={"owner": "", "pool": "", "queue": "triage", "status": "nurture"})
    assert moved.status == "ok"

    lead = await store.get_lead("L1")
    assert lead is not None and (lead.owner, lead.queue, lead.reason) == (None, "triage", why)
    assert lead.route_step is not None and lead.status_step is not None
    assert msgspec.json.decode(lead.route_step) == {"stage": "assignment",
                                                   "outcome": "queue:triage", "detail": why}
    assert msgspec.json.decode(lead.status_step) == {"stage": "qualification",
                                                    "outcome": "nurture", "detail": why}
    # the commit's reason is history
    assert [(h.event, h.reason) for h in lead.history] == [
        ("created", None), ("assigned", "picked by round_robin"), ("requeued", why)]


    # a transition that moves nothing (an accept) leaves the explanation as it is
    await store.commit(CommitPlan(lead_id="L2", now=NOW, kind="pool", decision=b"{}",
                                  chain=(POOL,)))
    accepted = await store.transition(
        "L2", now=NOW, new_state="accepted", expected_owner="a",
        entry=HistoryEntry(event="accepted", at=NOW, by="a", reason="called back"),
        fields={"accepted_at": "1"})
    assert accepted.status == "ok"
    kept = await store.get_lead("L2")
    assert kept is not None and kept.reason == "picked by round_robin"
    assert (kept.route_step, kept.status_step) == (None, None)
