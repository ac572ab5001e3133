"""API keys in Redis: only the SHA-256 of each key is stored, with its metadata.

One hash ``{apikeys}``: field = sha256 hex of the key, value = JSON :class:`KeyRecord`. Looking
a key up is one HGET; the key itself is never stored, logged or shown again after creation.
"""

from __future__ import annotations

import msgspec

from router.state.errors import translate_errors
from router.state.store import Store

__all__ = ["KeyRecord", "KeyStore"]


class KeyRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    source: str
    scopes: list[str]
    name: str = ""
    created_at: int  # ms
    expires_at: int | None = None  # ms; set on the old key by a rotation
    prefix: str = ""  # the first characters of the key, to tell keys apart in listings
    rotated_to: str | None = None
    rep: str | None = None  # an ``owner`` key acts for this rep only


_decode = msgspec.json.Decoder(KeyRecord).decode
_encode = msgspec.json.Encoder().encode


class KeyStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, digest: str) -> KeyRecord | None:
        with translate_errors("api key lookup"):
            self.store._count(1)
            raw = await self.store.wire.call("HGET", self.store.keys.api_keys, digest)
        return _decode(raw) if raw else None

    async def put(self, digest: str, record: KeyRecord) -> None:
        with translate_errors("api key write"):
            self.store._count(1)
            await self.store.wire.call("HSET", self.store.keys.api_keys, digest,
                                       _encode(record))

    async def count(self) -> int:
        """How many keys are stored (revoked ones are deleted; expired ones still count)."""
        with translate_errors("api key count"):
            self.store._count(1)
            return int(await self.store.wire.call("HLEN", self.store.keys.api_keys))

    async def all(self) -> dict[str, KeyRecord]:
        with translate_errors("api key list"):
            self.store._count(1)
            flat = await self.store.wire.call("HGETALL", self.store.keys.api_keys)
        return {flat[i].decode(): _decode(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def delete(self, digest: str) -> bool:
        with translate_errors("api key delete"):
            self.store._count(1)
            return bool(await self.store.wire.call("HDEL", self.store.keys.api_keys, digest))
