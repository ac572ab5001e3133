"""The pool pick (router/state/lua/_pick.lua, run here through the commit script) against a
real Valkey: strategies, eligibility, daily caps, overflow, concurrent tasks and processes.
What a commit stores: tests/state/lua/test_commit.py."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import itertools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import redis
from _pools import NOW, assign, m, owners, pool

from router.engine.availability import PoolPlan
from router.state import AssignResult, CommitPlan, HistoryEntry, Store

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[3]


# -- strategies -----------------------------------------------------------------------------


async def test_round_robin_order(store: Store) -> None:
    p = pool("p", m("a"), m("b"), m("c"))
    assert await owners(store, 7, p) == ["a", "b", "c", "a", "b", "c", "a"]


async def test_round_robin_survives_member_list_changes(store: Store) -> None:
    await owners(store, 2, pool("p", m("a"), m("b"), m("c"), m("d")))  # a, b; next would be c
    # b leaves: c now holds b's position and is next; then on around.
    assert await owners(store, 4, pool("p", m("a"), m("c"), m("d"))) == ["c", "d", "a", "c"]
    # e joins after c: rotation continues past the last one picked (c).
    assert await owners(store, 3, pool("p", m("a"), m("c"), m("e"), m("d"))) == ["e", "d", "a"]


async def test_round_robin_skips_ineligible(store: Store) -> None:
    await store.put_rep("b", "away")
    assert await owners(store, 4, pool("p", m("a"), m("b"), m("c"))) == ["a", "c", "a", "c"]


async def test_smooth_wrr_matches_nginx_sequence(store: Store) -> None:
    p = pool("p", m("a", 5), m("b", 1), m("c", 1), strategy="weighted_round_robin")
    # The sequence from nginx's commit introducing smooth weighted round robin.
    assert await owners(store, 14, p) == list("aabacaa") * 2


async def test_wrr_away_and_back_is_fair_without_burst_or_reset(store: Store) -> None:
    weights = {"a": 2, "b": 1, "c": 1}

    def plan(*present: str) -> PoolPlan:
        return pool("p", *(m(r, weights[r]) for r in present), strategy="weighted_round_robin")

    full = plan("a", "b", "c")
    await owners(store, 6, full)  # leave credits mid-cycle
    before = {s.rep: s.credit for s in (await store.pool_stats(full, NOW)).members}
    await store.put_rep("c", "away")
    away = await owners(store, 30, full)
    assert "c" not in away and abs(away.count("a") - 20) <= 1
    during = {s.rep: s.credit for s in (await store.pool_stats(full, NOW)).members}
    assert during["c"] == before["c"]  # no credit banked while away
    await store.put_rep("c", "available")

    # The first pick after the return continues everyone's credit (nobody reset).
    first = (await assign(store, full)).owner
    after = {s.rep: s.credit for s in (await store.pool_stats(full, NOW)).members}
    for rep, w in weights.items():
        expected = during[rep] + w - (sum(weights.values()) if rep == first else 0)
        assert after[rep] == expected, rep

    back = [first, *await owners(store, 39, full)]
    counts = collections.Counter(back)
    assert abs(counts["a"] - 20) <= 1 and abs(counts["b"] - 10) <= 1 and abs(counts["c"] - 10) <= 1
    assert all(x != y or x == "a" for x, y in itertools.pairwise(back))  # c never twice in a row


async def test_wrr_equal_weights_rotate_without_first_member_bias(store: Store) -> None:
    p = pool("p", m("a"), m("b"), m("c"), strategy="weighted_round_robin")
    assert await owners(store, 6, p) == ["a", "b", "c", "a", "b", "c"]
    # A different pool starting fresh after its last pick left off elsewhere still rotates.
    q = pool("q", m("x"), m("y"), strategy="weighted_round_robin")
    seq = await owners(store, 10, q)
    assert seq.count("x") == seq.count("y") == 5


async def test_least_loaded_prefers_fewest_open(store: Store) -> None:
    p = pool("p", m("a"), m("b"), m("c"), strategy="least_loaded")
    first = [await assign(store, p) for _ in range(3)]
    assert sorted(r.owner or "" for r in first) == ["a", "b", "c"]  # tied at 0: no repeats
    # a accepts its lead: it now has the fewest open leads and gets the next one.
    lead_a = next(r.lead_id for r in first if r.owner == "a")
    accepted = await store.transition(
        lead_a, now=NOW, new_state="accepted", entry=HistoryEntry(event="accepted", at=NOW),
        expected_owner="a", close_open=True)
    assert accepted.status == "ok"
    assert (await assign(store, p)).owner == "a"


async def test_least_loaded_ties_give_a_newcomer_no_burst(store: Store) -> None:
    ab = pool("p", m("a"), m("b"), strategy="least_loaded")
    results = [await assign(store, ab) for _ in range(20)]
    for r in results:  # everyone accepts: open counts back to 0
        await store.transition(r.lead_id, now=NOW, new_state="accepted",
                               entry=HistoryEntry(event="accepted", at=NOW),
                               expected_owner=r.owner, close_open=True)
        # keep the open counts equal as we go on
    abc = pool("p", m("a"), m("b"), m("c"), strategy="least_loaded")
    seq: list[str | None] = []
    for _ in range(9):
        r = await assign(store, abc)
        seq.append(r.owner)
        await store.transition(r.lead_id, now=NOW, new_state="accepted",
                               entry=HistoryEntry(event="accepted", at=NOW),
                               expected_owner=r.owner, close_open=True)
    assert seq.count("c") <= 4  # ≈ its third, not the 10 it "missed"
    assert all(x != y for x, y in itertools.pairwise(seq) if x == "c")


# -- eligibility and overflow -----------------------------------------------------------------


async def test_eligibility_rules(store: Store) -> None:
    past, future = NOW - dt.timedelta(minutes=1), NOW + dt.timedelta(hours=1)
    await store.put_rep("away", "away")
    await store.put_rep("back", "out_of_office", until=past)
    await store.put_rep("ooo", "out_of_office", until=future)
    p = pool("p", m("away"), m("back"), m("ooo"), m("night", in_hours=False), m("capped", cap=0))
    picked = await owners(store, 3, p)
    assert picked == ["back"] * 3


async def test_daily_cap_then_overflow_chain_to_queue(store: Store) -> None:
    await store.put_rep("b1", "away")
    await store.put_rep("b2", "away")
    ent = pool("na-ent", m("a", cap=1), m("b1"), m("b2"), m("n", in_hours=False))
    mm = pool("na-mm", m("x", cap=1))
    first = await assign(store, ent, mm, queue="triage")
    assert (first.owner, first.pool, first.reason) == ("a", "na-ent", "picked by round_robin")
    second = await assign(store, ent, mm, queue="triage")
    assert (second.owner, second.pool) == ("x", "na-mm")
    assert second.reason == ("no eligible member in na-ent (2 away, 1 outside working hours, "
                             "1 at daily cap) → overflow na-mm; picked by round_robin")
    third = await assign(store, ent, mm, queue="triage")
    assert (third.status, third.owner, third.queue) == ("queued", None, "triage")
    assert third.reason.endswith("no eligible member in na-mm (1 at daily cap) → queue triage")
    stored = await store.get_lead(third.lead_id)
    assert stored is not None and stored.state == "queued" and stored.queue == "triage"
    assert [h.event for h in stored.history] == ["created", "queued"]


async def test_cap_counts_per_local_day(store: Store) -> None:
    today = pool("p", m("a", cap=1, day="2026-03-02"))
    tomorrow = pool("p", m("a", cap=1, day="2026-03-03"))
    assert (await assign(store, today)).owner == "a"
    assert (await assign(store, today)).owner is None
    assert (await assign(store, tomorrow)).owner == "a"  # midnight in the rep's zone resets


async def test_pool_daily_cap(store: Store) -> None:
    p = pool("p", m("a"), m("b"), pool_cap=3)
    seq = await owners(store, 5, p, pool("q", m("z")))
    assert seq == ["a", "b", "a", "z", "z"]
    stats = await store.pool_stats(p, NOW)
    assert stats.used_today == 3 and stats.pool_cap == 3
    assert all(not s.eligible and "pool at daily cap" in s.why_not for s in stats.members)
    r = await assign(store, p, pool("q", m("z")))
    assert r.reason.startswith("p is at its pool daily cap (3/3) → overflow q")


# -- concurrency ----------------------------------------------------------------------------


async def _run_concurrently(store: Store, n: int, tasks: int, *chain: PoolPlan,
                            prefix: str) -> list[AssignResult]:
    ids = iter(range(n))
    out: list[AssignResult] = []

    async def worker() -> None:
        for i in ids:
            plan = CommitPlan(lead_id=f"{prefix}-{i}", now=NOW, kind="pool", decision=b"{}",
                              chain=chain, queue="overflow")
            out.append(await store.commit(plan))

    async with asyncio.TaskGroup() as tg:
        for _ in range(tasks):
            tg.create_task(worker())
    return out


async def test_concurrent_tasks_round_robin_exact(store: Store) -> None:
    p = pool("p", m("a"), m("b"), m("c"), m("d"), m("e"), m("f"), m("g"))
    results = await _run_concurrently(store, 600, 64, p, prefix="rr")
    counts = collections.Counter(r.owner for r in results)
    assert sum(counts.values()) == 600 and max(counts.values()) - min(counts.values()) <= 1


async def test_concurrent_tasks_weighted_shares_and_caps(store: Store) -> None:
    wrr = pool("w", m("a", 3), m("b", 2), m("c", 1), strategy="weighted_round_robin")
    results = await _run_concurrently(store, 600, 64, wrr, prefix="w")
    counts = collections.Counter(r.owner for r in results)
    assert abs(counts["a"] - 300) <= 1 and abs(counts["b"] - 200) <= 1
    assert abs(counts["c"] - 100) <= 1

    capped = pool("c", m("x", cap=150), m("y", cap=100), m("z", cap=120),
                  strategy="least_loaded", pool_cap=330)
    results = await _run_concurrently(store, 500, 64, capped, prefix="cap")
    counts = collections.Counter(r.owner for r in results)
    assert counts["x"] <= 150 and counts["y"] <= 100 and counts["z"] <= 120
    assert sum(v for k, v in counts.items() if k) == 330 and counts[None] == 170
    assert len({r.lead_id for r in results}) == 500


_PROCESS_WORKER = textwrap.dedent("""
    import asyncio, datetime as dt, json, sys
    from router.engine.availability import MemberPlan, PoolPlan
    from router.state import CommitPlan, Store

    async def main(url, tag, n):
        store = await Store.connect(url)
        day = "2026-03-02"
        now = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
        rr = PoolPlan(id="rr", strategy="round_robin", pool_cap=-1, day=day,
                      members=tuple(MemberPlan(r, 1, True, day, -1) for r in "abcde"))
        w = PoolPlan(id="w", strategy="weighted_round_robin", pool_cap=-1, day=day,
                     members=(MemberPlan("p", 3, True, day, -1), MemberPlan("q", 1, True, day, -1)))
        cap = PoolPlan(id="cap", strategy="least_loaded", pool_cap=140, day=day,
                       members=(MemberPlan("x", 1, True, day, 100),
                                MemberPlan("y", 1, True, day, 50)))
        ids = iter(range(n))
        out = []
        async def worker():
            for i in ids:
                for chain in ((rr,), (w,), (cap,)):
                    r = await store.commit(CommitPlan(
                        lead_id=f"{tag}-{chain[0].id}-{i}", now=now, kind="pool",
                        decision=b"{}", chain=chain, queue="overflow"))
                    out.append([r.lead_id, r.pool, r.owner, r.status])
        await asyncio.gather(*(worker() for _ in range(24)))
        await store.close()
        print(json.dumps(out))

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
""")


@pytest.mark.slow
async def test_two_processes_share_the_pools(redis_url: str, redis_client: redis.Redis) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", _PROCESS_WORKER, redis_url, tag, "300"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for tag in ("p1", "p2")]
    rows = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        rows += json.loads(out)
    assert len(rows) == 1800
    by_pool: dict[str, collections.Counter[str | None]] = collections.defaultdict(
        collections.Counter)
    for lead_id, pool_id, owner, _ in rows:
        by_pool[lead_id.split("-")[1]][owner if pool_id else None] += 1
    rr, w, cap = by_pool["rr"], by_pool["w"], by_pool["cap"]
    assert sum(rr.values()) == 600 and max(rr.values()) - min(rr.values()) <= 1
    assert abs(w["p"] - 450) <= 1 and abs(w["q"] - 150) <= 1
    assert cap["x"] <= 100 and cap["y"] <= 50 and cap["x"] + cap["y"] == 140
    assert cap[None] == 460
    # Every lead stored exactly once, with the owner the commit reported.
    assert len({r[0] for r in rows}) == 1800
    assert len(redis_client.keys("lr:{lr}:lead:*:history")) == 1800
    for lead_id, _, owner, _ in rows[::37]:
        assert redis_client.hget(f"lr:{{lr}}:lead:{lead_id}", "owner") == (owner or "").encode()
    assert int(redis_client.get("lr:{lr}:rep:x:day:2026-03-02") or 0) == cap["x"]
