"""leadrouter_sdk.writeback under overlapping deliveries (``sink_concurrency``): one
Retry-After deadline for every call in flight, one credential refresh at a time."""

from __future__ import annotations

import asyncio
import datetime as dt

from leadrouter_sdk import Event
from leadrouter_sdk.writeback import RetryableError, WriteBack


class Crm(WriteBack):
    def __init__(self) -> None:
        super().__init__(owners={"r1": "1"}, events=None, timeout=1, inline_wait=0)
        self.calls = 0
        self.gate = asyncio.Event()
        self.token: str | None = None
        self.refreshes = 0

    async def refresh(self) -> str:
        async with self.credentials_lock():
            if self.token is None:  # again under the lock: another call may have done it
                await asyncio.sleep(0)  # the token request
                self.refreshes += 1
                self.token = f"t{self.refreshes}"
        return self.token

    async def write(self, event: Event, rep: str) -> str:
        self.calls += 1
        await self.refresh()
        await self.gate.wait()  # every call in flight at once
        raise RetryableError("HTTP 429 (retried)", retry_after=30)


def _event(i: int) -> Event:
    return Event(id=f"{i}-0", type="lead.assigned", lead_id=f"ld_{i}",
                 at=dt.datetime(2024, 5, 1, tzinfo=dt.UTC), data={"owner": "r1"})


def test_overlapping_deliveries_share_the_retry_after_and_one_refresh() -> None:
    assert WriteBack.sink_concurrency == 4

    async def run() -> tuple[Crm, list[BaseException | None], list[BaseException | None]]:
        crm = Crm()
        calls = [asyncio.ensure_future(crm.on_event(_event(i))) for i in range(4)]
        while crm.calls < 4:
            await asyncio.sleep(0)
        crm.gate.set()
        first = await asyncio.gather(*calls, return_exceptions=True)
        later = await asyncio.gather(*(crm.on_event(_event(i)) for i in range(4, 8)),
                                     return_exceptions=True)
        return crm, first, later

    crm, first, later = asyncio.run(run())
    assert crm.refreshes == 1  # four calls found no token at once: one refresh
    assert all(isinstance(r, RetryableError) and "429" in str(r) for r in first)
    assert all(isinstance(r, RetryableError) and "asked to wait" in str(r) for r in later)
    assert crm.calls == 4  # the later ones failed fast, without calling the CRM


def test_one_credentials_lock_per_event_loop() -> None:
    crm = Crm()

    async def lock() -> asyncio.Lock:
        first = crm.credentials_lock()
        assert crm.credentials_lock() is first
        return first

    assert asyncio.run(lock()) is not asyncio.run(lock())
