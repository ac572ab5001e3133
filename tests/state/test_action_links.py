"""Single use of action links in Redis (router/state/action_links.py): of concurrent clicks
exactly one takes the link; spent until it expires; freed again after a failed action."""

from __future__ import annotations

import asyncio

import pytest
import redis

from router.state import Store
from router.state.action_links import BUSY_MS, LinkUses

pytestmark = pytest.mark.anyio


async def test_one_of_many_concurrent_clicks_takes_the_link(store: Store,
                                                            redis_client: redis.Redis) -> None:
    uses = LinkUses(store)
    assert await uses.state("lid-a") == "unused"
    got = await asyncio.gather(*(uses.begin("lid-a") for _ in range(20)))
    assert got.count("unused") == 1 and got.count("busy") == 19
    assert await uses.state("lid-a") == "busy"
    key = "lr:{lr}:link:lid-a"
    assert 0 < redis_client.pttl(key) <= BUSY_MS  # a crashed worker frees it by itself

    await uses.spend("lid-a", ttl_ms=60_000)
    assert await uses.state("lid-a") == "spent"
    assert await uses.begin("lid-a") == "spent"
    assert 30_000 < redis_client.pttl(key) <= 60_000  # kept until the link expires

    assert await uses.begin("lid-b") == "unused"
    await uses.release("lid-b")  # the action failed: the rep may try again
    assert await uses.state("lid-b") == "unused"
    assert await uses.begin("lid-b") == "unused"
    assert sorted(redis_client.keys("*link*")) == [b"lr:{lr}:link:lid-a",
                                                   b"lr:{lr}:link:lid-b"]
