"""The multiplexed Redis connection: automatic pipelining keeps replies with their callers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from router.state.wire import ReplyError, Wire

pytestmark = pytest.mark.anyio


class _CountingTransport:
    """Wraps the real transport and counts writes (the bytes still go to Valkey)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.inner.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_calls_made_in_one_loop_iteration_share_one_write(redis_url: str) -> None:
    wire = Wire(redis_url)
    try:
        await wire.call("PING")
        proto = await wire._protocol()
        counting = _CountingTransport(proto.transport)
        proto.transport = counting  # type: ignore[assignment]
        replies = await asyncio.gather(
            *(wire.call("ECHO", f"m{i}") for i in range(50)),
            wire.batch([("SET", "wire:k", "v"), ("GET", "wire:k"), ("INCR", "wire:k")]))
        assert replies[:50] == [f"m{i}".encode() for i in range(50)]
        ok, value, error = replies[50]
        assert (ok, value) == (b"OK", b"v") and isinstance(error, ReplyError)
        assert counting.writes == 1
        # a later call in another iteration is written on its own, and answered
        assert await wire.call("ECHO", "later") == b"later"
        assert counting.writes == 2
    finally:
        await wire.close()


async def test_a_cancelled_caller_does_not_shift_the_replies(redis_url: str) -> None:
    wire = Wire(redis_url)
    try:
        first = asyncio.ensure_future(wire.call("ECHO", "first"))
        second = asyncio.ensure_future(wire.call("ECHO", "second"))
        await asyncio.sleep(0)
        first.cancel()
        assert await second == b"second"
        assert await wire.call("ECHO", "third") == b"third"
    finally:
        await wire.close()


async def test_a_server_that_stops_answering_times_out_every_waiter(redis_url: str) -> None:
    # CLIENT PAUSE keeps the connection open but answers nothing: the watchdog must notice.
    # The pause (of writes: a write holds back everything this connection sent after it, and
    # the admin's UNPAUSE still gets through) outlasts any stall of a busy machine, so a
    # TimeoutError is the watchdog's doing, not a reply that came late; it fires by the loop's
    # clock, the one the deadlines are set by, never before the timeout.
    admin = Wire(redis_url)
    wire = Wire(redis_url, timeout=0.3)
    try:
        assert await wire.call("PING") == b"PONG"
        await admin.call("CLIENT", "PAUSE", 30_000, "WRITE")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        results = await asyncio.gather(wire.call("SET", "wire:a", "a"), wire.call("ECHO", "b"),
                                       return_exceptions=True)
        elapsed = loop.time() - t0
        assert all(isinstance(r, TimeoutError) for r in results), results
        assert 0.299 <= elapsed < 30, elapsed
        await admin.call("CLIENT", "UNPAUSE")
        assert await wire.call("ECHO", "again") == b"again"  # reconnects
    finally:
        await admin.call("CLIENT", "UNPAUSE")
        await wire.close()
        await admin.close()


async def test_an_empty_batch_answers_at_once_and_writes_nothing(redis_url: str) -> None:
    # An empty write is never answered: before the fix this raised "did not answer in time".
    wire = Wire(redis_url, timeout=0.5)
    try:
        await wire.call("PING")
        proto = await wire._protocol()
        counting = _CountingTransport(proto.transport)
        proto.transport = counting  # type: ignore[assignment]
        assert await wire.batch([]) == []
        assert counting.writes == 0
        assert await wire.call("ECHO", "after") == b"after"  # replies still line up
    finally:
        await wire.close()
