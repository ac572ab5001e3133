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

import httpx

__all__ = ["LoopClients"]


class LoopClients:
    """The per-loop clients of one plugin: :meth:`get` inside a coroutine."""

    def __init__(self) -> None:
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop,
                                                 httpx.AsyncClient] = weakref.WeakKeyDictionary()

    def get(self, *, timeout: float, user_agent: str) -> httpx.AsyncClient:
        """The running loop's client; made now (no redirects followed) if it has none yet."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = httpx.AsyncClient(
                timeout=timeout, follow_redirects=False, headers={"user-agent": user_agent})
        return client
