"""The GCRA rate limiter (router/state/ratelimit.py) on real Valkey: a burst of ``limit``,
then refusals with a retry time, one bucket per name, shared by every client."""

from __future__ import annotations

import asyncio

import pytest
import redis

from router.state import Store
from router.state.ratelimit import RateLimiter

pytestmark = pytest.mark.anyio


async def test_a_burst_of_limit_then_refusals(store: Store, redis_client: redis.Redis) -> None:
    limiter = RateLimiter(store)
    decisions = [await limiter.hit("form:x", limit=3, period_s=60) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert all((d.limit, d.period_s) == (3, 60) for d in decisions)
    assert [d.retry_after_s for d in decisions[:3]] == [0, 0, 0]
    refused = decisions[3]
    assert 1 <= refused.retry_after_s <= 20  # one request every 60/3 s
    assert 40 <= refused.reset_s <= 60
    key = store.keys.ratelimit("form:x")
    assert redis_client.exists(key)
    assert 0 < redis_client.pttl(key) <= 60_000


async def test_buckets_are_independent_and_cost_counts(store: Store) -> None:
    limiter = RateLimiter(store)
    assert (await limiter.hit("key:a", limit=2, period_s=60, cost=2)).remaining == 0
    assert not (await limiter.hit("key:a", limit=2, period_s=60)).allowed
    b = await limiter.hit("key:b", limit=2, period_s=60)
    assert b.allowed and b.remaining == 1


async def test_the_limit_holds_across_connections(store: Store, redis_url: str) -> None:
    other = await Store.connect(redis_url)
    try:
        limiters = [RateLimiter(store), RateLimiter(other)]
        decisions = await asyncio.gather(*(limiters[i % 2].hit("shared", limit=5, period_s=60)
                                           for i in range(12)))
        assert sum(d.allowed for d in decisions) == 5
    finally:
        await other.close()


async def test_capacity_comes_back_with_time(store: Store) -> None:
    # Judged by the clock the limiter is given, not by how fast this machine runs: one
    # request per 60 s comes back exactly at its deadline, not a millisecond before.
    now = [1_700_000_000_000]
    limiter = RateLimiter(store, now_ms=lambda: now[0])
    assert (await limiter.hit("fast", limit=2, period_s=120)).allowed
    assert (await limiter.hit("fast", limit=2, period_s=120)).allowed
    refused = await limiter.hit("fast", limit=2, period_s=120)
    assert not refused.allowed
    assert (refused.retry_after_s, refused.reset_s) == (60, 120)
    now[0] += 59_999
    assert not (await limiter.hit("fast", limit=2, period_s=120)).allowed
    now[0] += 1
    back = await limiter.hit("fast", limit=2, period_s=120)
    assert back.allowed and back.remaining == 0  # one request's worth, not the whole burst
    assert not (await limiter.hit("fast", limit=2, period_s=120)).allowed


async def test_without_a_clock_the_servers_time_counts(store: Store) -> None:
    # A limiter given a clock far in the past fills the same bucket, judged by that clock;
    # one without a clock reads Valkey's TIME, in which that bucket is long full again.
    past = RateLimiter(store, now_ms=lambda: 1_000_000)
    assert (await past.hit("clock", limit=1, period_s=60)).allowed
    assert not (await past.hit("clock", limit=1, period_s=60)).allowed
    assert (await RateLimiter(store).hit("clock", limit=1, period_s=60)).allowed
