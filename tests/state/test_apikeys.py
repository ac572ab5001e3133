"""The API-key hash (router/state/apikeys.py) on real Valkey: records by digest, never keys."""

from __future__ import annotations

import json

import pytest
import redis

from router.state import Store
from router.state.apikeys import KeyRecord, KeyStore

pytestmark = pytest.mark.anyio


def _record(key_id: str, **extra: object) -> KeyRecord:
    return KeyRecord(id=key_id, source="crm", scopes=["intake"], created_at=1_700_000_000_000,
                     **extra)  # type: ignore[arg-type]


async def test_put_get_all_delete(store: Store, redis_client: redis.Redis) -> None:
    keys = KeyStore(store)
    assert await keys.get("d1") is None and await keys.all() == {}
    one = _record("key_1", name="crm", prefix="lrk_abcd")
    two = _record("key_2", expires_at=1_700_000_060_000, rotated_to="key_3")
    await keys.put("d1", one)
    await keys.put("d2", two)
    assert await keys.get("d1") == one
    assert await keys.all() == {"d1": one, "d2": two}
    # one hash under the prefix, JSON values without the defaults
    assert sorted(redis_client.hkeys("lr:{lr}:apikeys")) == [b"d1", b"d2"]
    stored = json.loads(redis_client.hget("lr:{lr}:apikeys", "d1"))
    assert stored == {"id": "key_1", "source": "crm", "scopes": ["intake"], "name": "crm",
                      "created_at": 1_700_000_000_000, "prefix": "lrk_abcd"}

    updated = _record("key_1", expires_at=5)
    await keys.put("d1", updated)  # a rotation rewrites the record in place
    assert await keys.get("d1") == updated
    assert await keys.delete("d1") is True
    assert await keys.delete("d1") is False
    assert await keys.all() == {"d2": two}


async def test_each_call_is_one_round_trip(store: Store) -> None:
    keys = KeyStore(store)
    before = store.round_trips
    await keys.put("d", _record("key_1"))
    await keys.get("d")
    await keys.all()
    await keys.delete("d")
    assert store.round_trips == before + 4
