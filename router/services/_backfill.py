"""A start-up backfill in the background: wait, run it once, log how it ended.

The service indexes data written before an index existed (the replay's arrivals, the
accounts list) after start-up, so serving comes first. Live routing never depends on a
backfill: a Redis error is logged and the backfill runs again at the next start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from router.state.errors import StateError

__all__ = ["run_later"]


async def run_later(job: Callable[[], Awaitable[int | None]], *, delay: float,
                    log: logging.Logger, name: str, resume: str, done: str) -> None:
    """After ``delay`` s, ``job()`` (how many records it indexed; None: nothing to do, e.g.
    done before or another worker runs it). ``name`` names the backfill in the log lines,
    ``resume`` says when it runs again after an error, ``done`` describes the count."""
    await asyncio.sleep(delay)
    try:
        added = await job()
    except StateError as exc:
        log.warning("%s backfill stopped: %s (%s)", name, exc, resume)
        return
    if added is not None:
        log.info("%s backfill done: %d %s", name, added, done)
