"""The list indexes as the scripts keep them (router/state/lists.py, lua/_lx.lua): the
commit's entries, moves by transition / owner / escalate leaving the old value's range,
pruning by age, TTL, erasure, and the accounts index."""

from __future__ import annotations

import datetime as dt

import pytest

from router.engine.availability import MemberPlan, PoolPlan
from router.state import CommitPlan, Store
from router.state import lists as lx
from router.state.erasure import erase_leads
from router.state.models import HistoryEntry, to_ms
from router.state.sla import Move, SlaState

pytestmark = pytest.mark.anyio

DAY = "2026-03-02"
NOW = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)
POOL = PoolPlan(id="p", strategy="round_robin", pool_cap=-1, day=DAY,
                members=(MemberPlan("a", 1, True, DAY, -1), MemberPlan("b", 1, True, DAY, -1)))
VALUES = ("mql", "us", "smb", "B", "ext-1")


async def _commit(store: Store, lead_id: str, *, now: dt.datetime = NOW,
                  kind: str = "pool", lists: tuple[str, ...] = VALUES,
                  due: dt.datetime | None = None) -> str | None:
    result = await store.commit(CommitPlan(
        lead_id=lead_id, now=now, kind=kind, decision=b"{}", queue="inbox",
        chain=(POOL,) if kind == "pool" else (), due_at=due,
        sla_policy="hot" if due else None, lists=lists))
    assert result.committed
    return result.owner


async def _members(store: Store, lead_id: str) -> list[str]:
    raw = await store.wire.call("ZRANGE", store.keys.lists, "-", "+", "BYLEX")
    return sorted(m.decode() for m in raw if lx.member_id(m.decode()) == lead_id)


async def _walk(store: Store, code: str, value: str) -> list[str]:
    members = await lx.walk(store, code, value, since_ms=None, until_ms=None, after=None,
                            count=100)
    return [lx.member_id(m) for m in members]


async def test_commit_indexes_every_value_and_remembers_them(store: Store) -> None:
    owner = await _commit(store, "L1", due=NOW + 10 * MINUTE)
    inv = lx.inv(to_ms(NOW))
    assert await _members(store, "L1") == sorted([f"a\x1f\x1f{inv}\x1fL1\x1fext-1", *(
        f"{c}\x1f{v}\x1f{inv}\x1fL1" for c, v in (
            ("s", "mql"), ("t", "us"), ("g", "smb"), ("r", "B"), ("x", "ext-1"),
            ("o", owner), ("p", "p"), ("l", "pending")))])
    raw = await store.wire.call("HGET", store.keys.lead("L1"), "lx")
    assert sorted(lx.index_members("L1", raw)) == await _members(store, "L1")
    [lead] = await lx.read_indexed(store, ["L1"])
    assert lead is not None and lead.created_ms == to_ms(NOW) and lead.state == "assigned"
    assert dict(zip(lx.FIELDS, lead.values, strict=True))["owner"] == owner
    # newest first within a value, and a window by created time
    await _commit(store, "L2", now=NOW + MINUTE)
    assert await _walk(store, "s", "mql") == ["L2", "L1"]
    window = await lx.walk(store, "s", "mql", since_ms=to_ms(NOW), until_ms=to_ms(NOW),
                           after=None, count=10)
    assert [lx.member_id(m) for m in window] == ["L1"]
    assert await lx.count_ranges(store, [("s", "mql"), ("s", "sql")], since_ms=None,
                                 until_ms=None) == [2, 0]
    assert store.retention_ms < await store.wire.call("PTTL", store.keys.lists) \
        <= store.retention_ms * 9 // 8
    # a value holding the separator is not indexed (it could not be told apart)
    await _commit(store, "L3", kind="queue", lists=("mql", "a\x1fb", "", "", ""))
    assert not any(m.startswith("t\x1f") for m in await _members(store, "L3"))


async def test_the_commit_renews_the_index_ttl_once_an_eighth_of_a_retention(
        store: Store, redis_url: str) -> None:
    async def pttl() -> int:
        return int(await store.wire.call("PTTL", store.keys.lists))

    await _commit(store, "T1", kind="queue")
    assert store.retention_ms < await pttl() <= store.retention_ms * 9 // 8
    # renewed by this worker a moment ago: its next commits leave the TTL as it is
    await store.wire.call("PEXPIRE", store.keys.lists, 3_600_000)
    await _commit(store, "T2", kind="queue")
    assert 0 < await pttl() <= 3_600_000
    assert sorted(await _walk(store, "q", "inbox")) == ["T1", "T2"]
    # another worker (its own Store) renews it at its first commit with lists
    other = await Store.connect(redis_url)
    try:
        await _commit(other, "T3", kind="queue", lists=())
        assert await pttl() <= 3_600_000
        await _commit(other, "T4", kind="queue")
        assert await pttl() > store.retention_ms
    finally:
        await other.close()


async def test_an_owner_holding_the_separator_is_not_indexed(store: Store) -> None:
    result = await store.commit(CommitPlan(
        lead_id="W1", now=NOW, kind="owner", owner="a\x1fb", decision=b"{}", queue="inbox",
        lists=VALUES))
    assert result.committed and result.owner == "a\x1fb"
    [lead] = await lx.read_indexed(store, ["W1"])
    assert lead is not None and lead.values == ("", *VALUES, "", "", "", "")
    assert not any(m.startswith("o\x1f") for m in await _members(store, "W1"))
    assert await _walk(store, "s", "mql") == ["W1"]


async def test_owner_actions_and_escalations_move_the_entries(store: Store) -> None:
    sla = SlaState(store)
    owner = await _commit(store, "L1", due=NOW + 10 * MINUTE)
    assert owner and await _walk(store, "o", owner) == ["L1"]
    # breach with a re-pick: the other rep, still pending under a new deadline
    fence, due = await sla.claim_due(NOW + 11 * MINUTE, lease=MINUTE, batch=10)
    lead = await sla.read_lead("L1")
    assert due == ["L1"] and lead is not None
    moved = await sla.escalate(lead, fence=fence, now=NOW + 11 * MINUTE,
                               move=Move(how="pick", chain=(POOL,), queue="inbox",
                                         due_at=NOW + 30 * MINUTE, label="reassign"))
    assert moved.status == "reassigned" and moved.owner and moved.owner != owner
    assert await _walk(store, "o", owner) == []
    assert await _walk(store, "o", moved.owner) == ["L1"]
    # accepted late? no, in time: sla_state met
    lead = await sla.read_lead("L1")
    assert lead is not None
    done = await sla.owner_action(lead, action="accept", rep=moved.owner,
                                  now=NOW + 12 * MINUTE)
    assert done.status == "ok"
    assert await _walk(store, "l", "pending") == []
    assert await _walk(store, "l", "met") == ["L1"]
    # a notify breach on another lead: breached
    await _commit(store, "L2", due=NOW + 10 * MINUTE)
    fence, _ = await sla.claim_due(NOW + 40 * MINUTE, lease=MINUTE, batch=10)
    lead = await sla.read_lead("L2")
    assert lead is not None
    assert (await sla.escalate(lead, fence=fence, now=NOW + 40 * MINUTE,
                               move=Move(how="notify"))).status == "notified"
    assert await _walk(store, "l", "breached") == ["L2"]


async def test_a_transition_moves_the_entries(store: Store) -> None:
    await _commit(store, "L1", kind="queue")
    assert await _walk(store, "q", "inbox") == ["L1"]
    done = await store.transition(
        "L1", now=NOW + MINUTE, new_state="assigned",
        entry=HistoryEntry(event="assigned", at=NOW), fields={"owner": "a", "queue": ""})
    assert done.status == "ok"
    assert await _walk(store, "q", "inbox") == []
    assert await _walk(store, "o", "a") == ["L1"]
    [lead] = await lx.read_indexed(store, ["L1"])
    assert lead is not None and lead.state == "assigned"


async def test_pruning_by_age_and_erasure(store: Store) -> None:
    ret = dt.timedelta(milliseconds=store.retention_ms)
    await _commit(store, "old1", kind="queue", lists=("mql", "us", "smb", "B", "ext-old"))
    await _commit(store, "new1", kind="queue", now=NOW + MINUTE)
    assert await _walk(store, "s", "mql") == ["new1", "old1"]
    # one commit in 16 prunes (its id's last byte: "0" = 48) — a retention later
    later = NOW + ret + 30 * dt.timedelta(seconds=1)
    await _commit(store, "x-1", kind="queue", now=later)  # "1": no pruning
    assert "old1" in await _walk(store, "s", "mql")
    await _commit(store, "x-0", kind="queue", now=later)
    assert await _walk(store, "s", "mql") == ["x-0", "x-1", "new1"]
    assert await _walk(store, "a", "") == ["x-0", "x-1", "new1"]
    assert await _members(store, "old1") == []  # its external id's entry too, via `a`
    assert 0 < await store.wire.call("PTTL", store.keys.lists_vals) <= store.retention_ms
    # erasure takes every entry of the lead
    await erase_leads(store, ["new1"], now_ms=to_ms(later), kind="lead", by="test")
    assert await _members(store, "new1") == []
    assert await _walk(store, "x", "ext-1") == ["x-0", "x-1"]


async def test_accounts_index_follows_puts_and_deletes(store: Store) -> None:
    await store.put_account("B.example.", "r1")
    await store.put_account("a.example", "r2")
    assert await lx.accounts_page(store, owner=None, after=None, count=10) == [
        ("a.example", "r2"), ("b.example", "r1")]
    await store.put_account("b.example", "r2")
    assert await lx.accounts_page(store, owner="r1", after=None, count=10) == []
    assert await lx.accounts_page(store, owner="r2", after="a.example", count=10) == [
        ("b.example", "r2")]
    assert await store.delete_account("a.example") is True
    assert await store.delete_account("a.example") is False
    assert await lx.accounts_page(store, owner=None, after=None, count=10) == [
        ("b.example", "r2")]
    assert await lx.put_accounts(store, [("c.example", "r1"), ("b.example", "r2")],
                                 now=NOW, chunk=1) == 1
