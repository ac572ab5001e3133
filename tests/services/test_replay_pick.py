"""The replay's pick simulation (router/services/_replay_pick.py) against the real commit script
(router/state/lua/_pick.lua) on Valkey: the same seeded scenarios — every strategy, caps per rep
and per pool, away / out of office with ``until``, working hours, overflow chains, owner routes
— give the same picks, lead by lead."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from router.engine.availability import MemberPlan, PoolPlan
from router.services._replay_pick import Picked, PickWorld
from router.state import CommitPlan, Store
from router.state.inputs import parse_pick
from router.state.models import RepStatus, to_ms

pytestmark = pytest.mark.anyio

T0 = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
DAY = "2026-03-02"
REPS = [f"r{i}" for i in range(8)]
STRATEGIES = ("round_robin", "weighted_round_robin", "least_loaded")


def _pools(rng: random.Random) -> list[PoolPlan]:
    pools = []
    for n in range(4):
        members = tuple(MemberPlan(rep, rng.randint(1, 3), rng.random() > 0.15, DAY,
                                   rng.choice((-1, -1, 2, 4, 8)))
                        for rep in rng.sample(REPS, rng.randint(1, 5)))
        pools.append(PoolPlan(id=f"p{n}", strategy=STRATEGIES[n % 3],
                              pool_cap=rng.choice((-1, 10, 25)) if n == 3 else -1, day=DAY,
                              members=members))
    return pools


def _with_hours(rng: random.Random, p: PoolPlan) -> PoolPlan:
    """Working hours move on: each lead sees each member in or out of its hours anew."""
    members = tuple(MemberPlan(m.rep, m.weight, rng.random() > 0.15, m.day, m.cap)
                    for m in p.members)
    return PoolPlan(id=p.id, strategy=p.strategy, pool_cap=p.pool_cap, day=p.day,
                    members=members)


async def _scenario(store: Store, seed: int, leads: int
                    ) -> list[tuple[CommitPlan, Picked, str | None]]:
    """Commit ``leads`` random leads; returns each plan, the script's pick and its facts."""
    rng = random.Random(seed)
    pools = _pools(rng)
    now = T0
    out = []
    for i in range(leads):
        now += dt.timedelta(seconds=rng.randint(1, 120))
        if rng.random() < 0.2:  # a rep changes state: away / out of office, maybe until
            status: RepStatus = rng.choice(("available", "away", "out_of_office"))
            until = now + dt.timedelta(seconds=rng.randint(-300, 900)) \
                if rng.random() < 0.6 else None
            await store.put_rep(rng.choice(REPS), status, until, now=now)
        if rng.random() < 0.1:
            plan = CommitPlan(lead_id=f"s{seed}-{i}", now=now, kind="owner", decision=b"{}",
                              owner=rng.choice(REPS), owner_day=DAY, input=b"x")
        else:
            start = rng.randrange(len(pools))
            chain = tuple(_with_hours(rng, p) for p in pools[start:start + rng.randint(1, 3)])
            plan = CommitPlan(lead_id=f"s{seed}-{i}", now=now, kind="pool", decision=b"{}",
                              chain=chain, queue="q", input=b"x")
        result = await store.commit(plan)
        raw = await store.wire.call("HGET", store.keys.lead(plan.lead_id), "pick")
        out.append((plan, (result.owner, result.pool, result.queue),
                    raw.decode() if raw else None))
    return out


def _simulate(world: PickWorld, plan: CommitPlan) -> Picked:
    if plan.kind == "owner":
        assert plan.owner is not None and plan.owner_day is not None
        world.count(plan.owner, plan.owner_day)
        return plan.owner, None, None
    return world.pick(plan.chain, plan.queue, to_ms(plan.now))


@pytest.mark.parametrize("seed", range(6))
async def test_the_simulation_picks_what_the_commit_script_picks(store: Store, seed: int
                                                                  ) -> None:
    """From an empty state, told only the reps' availability, the simulation carries its own
    state forward and makes every pick the script made."""
    committed = await _scenario(store, seed, 300)
    world = PickWorld()
    strategies: set[str] = set()
    queued = 0
    for plan, picked, raw in committed:
        facts = parse_pick(raw.encode()) if raw else None
        assert facts is not None
        for seen in facts.pools:  # availability only: the external facts
            for m in seen.members:
                world.status[m.rep] = (m.status, m.until)
        assert _simulate(world, plan) == picked, plan.lead_id
        assert (facts.owner, facts.pool, facts.queue) == picked
        strategies.update(p.strategy for p in plan.chain if p.id == picked[1])
        queued += picked[0] is None
    assert strategies == set(STRATEGIES) and queued > 0  # every strategy and the queue ran


async def test_the_stored_facts_alone_reproduce_each_pick(store: Store) -> None:
    """A fresh world given only one lead's stored facts picks as the script did: the facts
    hold everything the pick read."""
    committed = await _scenario(store, 99, 300)
    overflowed = 0
    for plan, picked, raw in committed:
        assert raw is not None
        facts = parse_pick(raw.encode())
        world = PickWorld()
        world.observe(facts, DAY, {m.rep: m.day for p in plan.chain for m in p.members})
        assert _simulate(world, plan) == picked, plan.lead_id
        overflowed += len(facts.pools) > 1
    assert overflowed > 0


async def test_facts_record_caps_and_unavailability(store: Store) -> None:
    until = T0 + dt.timedelta(hours=1)
    await store.put_rep("b", "out_of_office", until, now=T0)
    full = PoolPlan(id="full", strategy="round_robin", pool_cap=0, day=DAY,
                    members=(MemberPlan("a", 1, True, DAY, -1),))
    ll = PoolPlan(id="ll", strategy="least_loaded", pool_cap=-1, day=DAY,
                  members=(MemberPlan("a", 1, True, DAY, -1), MemberPlan("b", 1, True, DAY, -1)))
    await store.commit(CommitPlan(lead_id="x", now=T0, kind="pool", decision=b"{}",
                                  chain=(full, ll), input=b"in"))
    fields = await store.wire.call("HMGET", store.keys.lead("x"), "input", "pick")
    assert fields[0] == b"in"
    facts = parse_pick(fields[1])
    assert (facts.owner, facts.pool, facts.queue) == ("a", "ll", None)
    assert [(p.pool, p.used, p.state) for p in facts.pools] == [("full", 0, None),
                                                               ("ll", 0, {})]
    assert [(m.rep, m.status, m.until, m.today) for m in facts.pools[1].members] == \
        [("a", "", None, 0), ("b", "out_of_office", to_ms(until), 0)]
    assert facts.pools[1].open == {"a": 0}  # least_loaded read the eligible member's count
    assert await store.wire.call("ZSCORE", store.keys.arrivals, "x") == str(to_ms(T0)).encode()
