"""The shared rules generation (router/state/rules_sync.py) on real Valkey: what one worker
bumps, every other worker reads."""

from __future__ import annotations

import pytest
import redis

from router.state import Store
from router.state.rules_sync import bump_rules_generation, rules_generation

pytestmark = pytest.mark.anyio


async def test_generation_starts_at_zero_and_counts_bumps(store: Store,
                                                          redis_client: redis.Redis) -> None:
    assert await rules_generation(store) == 0
    assert redis_client.dbsize() == 0  # reading writes nothing
    assert await bump_rules_generation(store) == 1
    assert await bump_rules_generation(store) == 2
    assert await rules_generation(store) == 2
    assert redis_client.get("lr:{lr}:rules:generation") == b"2"
    assert redis_client.ttl("lr:{lr}:rules:generation") == -1  # never expires


async def test_another_worker_sees_the_bump(store: Store, redis_url: str) -> None:
    other = await Store.connect(redis_url)
    try:
        seen = await rules_generation(other)
        await bump_rules_generation(store)
        assert await rules_generation(other) == seen + 1
        assert await bump_rules_generation(other) == seen + 2
        assert await rules_generation(store) == seen + 2
    finally:
        await other.close()


async def test_each_prefix_has_its_own_generation(store: Store, redis_url: str) -> None:
    await bump_rules_generation(store)
    staging = await Store.connect(redis_url, prefix="staging:")
    try:
        assert await rules_generation(staging) == 0
        assert await bump_rules_generation(staging) == 1
        assert await rules_generation(store) == 1
    finally:
        await staging.close()


async def test_each_call_is_one_round_trip(store: Store) -> None:
    before = store.round_trips
    await rules_generation(store)
    await bump_rules_generation(store)
    assert store.round_trips == before + 2
