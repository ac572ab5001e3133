"""Reading back the scored decision of many leads, for score calibration and tuning
(router/services/outcome_reader.py): the stored decision JSON and the pool the lead went to,
one pipelined round trip per page (``HMGET``; nothing written)."""

from __future__ import annotations

from collections.abc import Sequence

from router.state.errors import check_reply, translate_errors
from router.state.store import Store

__all__ = ["read_scored"]


async def read_scored(store: Store, lead_ids: Sequence[str]
                      ) -> list[tuple[bytes | None, bytes | None]]:
    """(decision JSON, pool) of each lead of ``lead_ids``, in order; (None, None) for a lead
    that is gone (expired, erased)."""
    if not lead_ids:
        return []
    with translate_errors("calibration read"):
        store._count(1)
        replies = await store.wire.batch(
            [("HMGET", store.keys.lead(lead_id), "decision", "pool") for lead_id in lead_ids])
    out: list[tuple[bytes | None, bytes | None]] = []
    for reply in replies:
        check_reply("calibration read", reply)
        out.append((reply[0], reply[1]))
    return out
