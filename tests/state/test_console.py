"""Console sessions in Valkey (router/state/console.py): stored under the hash of the cookie,
with the session's TTL, gone at sign-out."""

from __future__ import annotations

import hashlib

import pytest
import redis

from router.state.console import SessionRecord, SessionStore
from router.state.store import Store

pytestmark = pytest.mark.anyio


async def test_put_get_delete_with_ttl(store: Store, redis_client: redis.Redis) -> None:
    sessions = SessionStore(store)
    digest = hashlib.sha256(b"the-cookie").hexdigest()
    record = SessionRecord(role="viewer", who="key_1", name="Ana", csrf="c", created_at=1,
                           expires_at=2, key_digest="k")
    assert await sessions.get(digest) is None
    await sessions.put(digest, record, ttl_s=60)
    assert await sessions.get(digest) == record
    name = f"lr:{{lr}}:ui:session:{digest}"
    assert 0 < redis_client.ttl(name) <= 60
    assert b"the-cookie" not in redis_client.get(name)  # type: ignore[operator]
    await sessions.delete(digest)
    assert await sessions.get(digest) is None and not redis_client.exists(name)
