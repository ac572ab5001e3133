"""Replay protection for signed webhooks: each webhook id is accepted once.

``SET {wh:source:id} F|<body sha256> NX GET PX ttl``: the first delivery claims the id; a
second one sees the claim. When the first finished, the claim holds its outcome, so a sender
that retries after a lost response gets that outcome instead of a second lead.
"""

from __future__ import annotations

from router.state.errors import translate_errors
from router.state.store import Store

__all__ = ["ReplayGuard"]


class ReplayGuard:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def claim(self, source: str, message_id: str, fingerprint: str,
                    ttl_s: int) -> str | None:
        """None if this request now owns the id, else what is stored for it (F|.. / D|..)."""
        key = self.store.keys.webhook(source, message_id)
        with translate_errors("webhook replay check"):
            self.store._count(1)
            old = await self.store.wire.call("SET", key, f"F|{fingerprint}", "NX", "GET", "PX",
                                             ttl_s * 1000)
        return old.decode() if old is not None else None

    async def finish(self, source: str, message_id: str, fingerprint: str, outcome: str,
                     ttl_s: int) -> None:
        key = self.store.keys.webhook(source, message_id)
        with translate_errors("webhook replay record"):
            self.store._count(1)
            await self.store.wire.call("SET", key, f"D|{fingerprint}|{outcome}", "PX",
                                       ttl_s * 1000)

    async def release(self, source: str, message_id: str) -> None:
        """Processing failed: let the sender's retry through."""
        with translate_errors("webhook replay release"):
            self.store._count(1)
            await self.store.wire.call("DEL", self.store.keys.webhook(source, message_id))
