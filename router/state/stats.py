"""Cluster-wide figures read from Redis for ``/metrics`` and ``/v1/status`` (one round trip).

These are not per process: every instance reads the same keys and reports the same numbers, so
dashboards take ``max()`` of them across instances, never ``sum()``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import msgspec

from router.state.errors import check_reply, translate_errors
from router.state.models import to_ms
from router.state.store import Store

__all__ = ["Backlog", "backlog"]


class Backlog(msgspec.Struct, kw_only=True):
    sla_pending: int
    sla_overdue: int
    queues: dict[str, int]


async def backlog(store: Store, queues: Iterable[str], now: dt.datetime) -> Backlog:
    """Leads with a running SLA clock, how many of them are past due, and each queue's depth."""
    names = sorted(set(queues))
    keys = store.keys
    commands: list[tuple[str | int, ...]] = [
        ("ZCARD", keys.sla_due), ("ZCOUNT", keys.sla_due, "-inf", to_ms(now))]
    commands += [("ZCARD", keys.queue(name)) for name in names]
    with translate_errors("backlog"):
        store.round_trips += 1
        replies = await store.wire.batch(commands)
    for reply in replies:
        check_reply("backlog", reply)
    return Backlog(sla_pending=int(replies[0]), sla_overdue=int(replies[1]),
                   queues={name: int(n) for name, n in zip(names, replies[2:], strict=True)})
