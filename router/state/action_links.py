"""Single use of signed action links (router/services/action_links.py): one string per link id.

``link:ID`` is absent while the link is unused; :meth:`LinkUses.begin` sets it to ``busy``
atomically (``SET NX``, with a short TTL) so that of two clicks of the same link exactly one
acts; :meth:`LinkUses.spend` turns it into ``spent`` once the action succeeded, kept until the
link expires (after that the signature check refuses it anyway); :meth:`LinkUses.release`
frees a link whose action failed (the rep may try again). Nothing here names a lead or a rep.
"""

from __future__ import annotations

from typing import Literal

from router.state.errors import translate_errors
from router.state.store import Store

__all__ = ["BUSY_MS", "LinkUses"]

BUSY_MS = 30_000  # an action in flight holds its link at most this long (a crashed worker)

Use = Literal["unused", "busy", "spent"]


class LinkUses:
    """The use of each link id, on one :class:`Store` (sharing its connection)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.keys = store.keys

    async def state(self, link_id: str) -> Use:
        """``unused``, ``busy`` (an action through it is running) or ``spent``."""
        with translate_errors("link_state"):
            self.store.round_trips += 1
            value = await self.store.wire.call("GET", self.keys.action_link(link_id))
        if value is None:
            return "unused"
        return "spent" if value == b"spent" else "busy"

    async def begin(self, link_id: str) -> Use:
        """Take the link for one action: ``unused`` when this caller got it (go on), else what
        it already is (``busy`` or ``spent``: refuse). One SET NX; a GET only when refused."""
        with translate_errors("link_begin"):
            self.store.round_trips += 1
            got = await self.store.wire.call("SET", self.keys.action_link(link_id), "busy",
                                             "NX", "PX", BUSY_MS)
        if got is not None:
            return "unused"
        state = await self.state(link_id)
        return "busy" if state == "unused" else state  # freed meanwhile: still refuse once

    async def spend(self, link_id: str, ttl_ms: int) -> None:
        """The action succeeded: the link is spent until it expires (``ttl_ms`` from now)."""
        with translate_errors("link_spend"):
            self.store.round_trips += 1
            await self.store.wire.call("SET", self.keys.action_link(link_id), "spent",
                                       "PX", max(1000, ttl_ms))

    async def release(self, link_id: str) -> None:
        """The action failed: the link may be used again."""
        with translate_errors("link_release"):
            self.store.round_trips += 1
            await self.store.wire.call("DEL", self.keys.action_link(link_id))
