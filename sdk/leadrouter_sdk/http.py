"""One ``httpx.AsyncClient`` per running event loop, for plugins that speak HTTP.

A plugin object lives as long as the service, but a client is bound to the event loop it was
first used on (its connection pool): the service runs one loop per worker, and a plugin's
tests or ``leadrouter plugins test-notify`` may run others. So a plugin keeps one client per
loop, created on first use there and dropped with the loop (a weak reference).

Needs httpx, which the SDK itself does not depend on: a plugin that imports this module
declares httpx among its own dependencies (as for :mod:`leadrouter_sdk.writeback`).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

import httpx

__all__ = ["LoopClients", "PerLoop"]

T = TypeVar("T")


class PerLoop(Generic[T]):
    """One ``T`` per running event loop, made on first use there and dropped with the loop
    (a weak reference): for what belongs to one loop (an HTTP client's pool, an
    ``asyncio.Lock``) in an object that outlives it."""

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = \
            weakref.WeakKeyDictionary()

    def get(self, make: Callable[[], T]) -> T:
        """The running loop's ``T``; ``make()`` now if it has none yet. Inside a coroutine."""
        loop = asyncio.get_running_loop()
        found = self._by_loop.get(loop)
        if found is None:
            found = self._by_loop[loop] = make()
        return found


class LoopClients:
    """The per-loop clients of one plugin: :meth:`get` inside a coroutine."""

    def __init__(self) -> None:
        self._clients: PerLoop[httpx.AsyncClient] = PerLoop()

    def get(self, *, timeout: float, user_agent: str) -> httpx.AsyncClient:
        """The running loop's client; made now (no redirects followed) if it has none yet."""
        return self._clients.get(lambda: httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, headers={"user-agent": user_agent}))
