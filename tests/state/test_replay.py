"""Replay protection for signed webhooks (router/state/replay.py) on real Valkey: an id is
accepted once within its window, a retry gets the first outcome, a release lets it through."""

from __future__ import annotations

import asyncio

import pytest
import redis

from router.state import Store
from router.state.replay import ReplayGuard

pytestmark = pytest.mark.anyio


async def test_a_replayed_id_is_refused_within_its_window(store: Store,
                                                          redis_client: redis.Redis) -> None:
    guard = ReplayGuard(store)
    assert await guard.claim("hubspot", "m1", "fp1", 60) is None  # first delivery owns it
    assert await guard.claim("hubspot", "m1", "fp1", 60) == "F|fp1"  # in flight
    assert await guard.claim("hubspot", "m1", "other", 60) == "F|fp1"  # a forged body too
    key = store.keys.webhook("hubspot", "m1")
    assert redis_client.get(key) == b"F|fp1"  # the first claim is kept, not overwritten
    assert 0 < redis_client.pttl(key) <= 60_000

    await guard.finish("hubspot", "m1", "fp1", '["ld_1"]', 120)
    assert await guard.claim("hubspot", "m1", "fp1", 60) == 'D|fp1|["ld_1"]'
    assert 60_000 < redis_client.pttl(key) <= 120_000  # the outcome gets its own window


async def test_ids_are_per_source(store: Store) -> None:
    guard = ReplayGuard(store)
    assert await guard.claim("hubspot", "m1", "fp", 60) is None
    assert await guard.claim("segment", "m1", "fp", 60) is None
    assert await guard.claim("hubspot", "m2", "fp", 60) is None
    assert await guard.claim("segment", "m1", "fp", 60) == "F|fp"


async def test_release_lets_the_retry_through(store: Store) -> None:
    guard = ReplayGuard(store)
    assert await guard.claim("crm", "m1", "fp", 60) is None
    await guard.release("crm", "m1")
    assert await guard.claim("crm", "m1", "fp", 60) is None
    await guard.release("crm", "never-seen")  # harmless


def _server_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return seconds * 1000 + micros // 1000


async def test_the_window_ends_by_itself(store: Store, redis_client: redis.Redis) -> None:
    """The window is Valkey's own expiry, on Valkey's clock: the claim's deadline is the time of
    the claim plus the window, and once that clock passes it the id is free again (no sleep:
    the deadline is moved to the past instead of waiting for it)."""
    guard = ReplayGuard(store)
    key = store.keys.webhook("crm", "m1")
    before = _server_ms(redis_client)
    assert await guard.claim("crm", "m1", "fp", 1) is None
    after = _server_ms(redis_client)
    deadline = redis_client.pexpiretime(key)
    assert before + 1000 <= deadline <= after + 1000  # ends 1 s after the claim, by itself
    assert await guard.claim("crm", "m1", "fp", 1) == "F|fp"  # within the window
    assert redis_client.pexpiretime(key) == deadline  # a refused claim does not extend it
    assert redis_client.pexpireat(key, _server_ms(redis_client) - 1)  # Valkey's clock passes it
    assert await guard.claim("crm", "m1", "fp", 1) is None


async def test_concurrent_deliveries_one_winner(store: Store) -> None:
    guard = ReplayGuard(store)
    results = await asyncio.gather(*(guard.claim("crm", "burst", f"fp{i}", 60)
                                     for i in range(20)))
    assert results.count(None) == 1
    winner = f"F|fp{results.index(None)}"
    assert all(r == winner for r in results if r is not None)
