"""Concurrent delivery of one sink's new outbox events (router/plugins/delivery.py), against a
real Valkey and the webhook plugin POSTing to a real HTTP receiver on loopback.

The receiver holds every request until ``hold`` of them are in flight, or as many as a correct
delivery can have in flight (one per lead among the requests it still expects), then answers
them all: no sleeps, so the in-flight counts it records are what the delivery allowed, not what
a timer let happen (a delivery that let more overlap, or two of one lead, is seen as such)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from leadrouter_sdk import Event, hookimpl
from leadrouter_webhook import WebhookPlugin

from router.plugins.delivery import Delivery, group_name
from router.plugins.host import PluginHost
from router.settings import Settings
from router.state.outbox import Outbox
from router.state.store import Store

pytestmark = pytest.mark.anyio

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Receiver:
    """A minimal HTTP/1.1 server in the test's event loop (keep-alive, Content-Length)."""

    def __init__(self, *, hold: int, expect: list[str], fail: frozenset[str] = frozenset()
                 ) -> None:
        self.hold = hold  # answer once this many requests are in flight...
        self.remaining = Counter(expect)  # ...or one of each lead still expected
        self.fail = set(fail)  # lead ids answered 500 (once each)
        self.in_flight: list[str] = []  # lead ids of the requests being held
        self.max_in_flight = 0
        self.overlapped_same_lead = False
        self.arrivals: list[str] = []  # lead ids in arrival order
        self.order: list[tuple[str, str]] = []  # (lead id, webhook-id) in arrival order
        self._wave = 0
        self._changed = asyncio.Condition()
        self.url = ""

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Receiver]:
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
        async with server:
            yield self

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (
                    line.partition(":") for line in head.decode().split("\r\n")[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status = await self._handle(json.loads(body)["data"]["lead_id"],
                                            headers.get("webhook-id", ""))
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _handle(self, lead: str, event_id: str) -> int:
        async with self._changed:
            self.arrivals.append(lead)
            self.order.append((lead, event_id))
            self.overlapped_same_lead |= lead in self.in_flight
            self.in_flight.append(lead)
            self.max_in_flight = max(self.max_in_flight, len(self.in_flight))
            wave = self._wave
            if len(self.in_flight) >= min(self.hold, len(+self.remaining)):
                self._wave += 1  # release every request held so far
                self._changed.notify_all()
            await self._changed.wait_for(lambda: self._wave != wave)
            # Out of the in-flight count before the answer is written: the client can only
            # start another delivery after it read this answer.
            self.in_flight.remove(lead)
            self.remaining[lead] -= 1
            if lead in self.fail:
                self.fail.discard(lead)
                return 500
            return 200


@pytest.fixture
async def store(redis_url: str) -> Any:
    s = await Store.connect(redis_url)
    yield s
    await s.close()


async def _publish(store: Store, leads: list[str]) -> list[str]:
    ids = []
    for i, lead in enumerate(leads):
        reply = await store.wire.call(
            "XADD", store.keys.outbox, "*", "type", "lead.assigned", "lead_id", lead,
            "at", 1714564800000 + i, "owner", "r1", "decision", '{"status":"mql"}')
        ids.append(reply.decode())
    return ids


class Undeclared:
    """A sink that says nothing about concurrency (the webhook plugin inside)."""

    def __init__(self, inner: WebhookPlugin) -> None:
        self.inner = inner

    @hookimpl
    async def on_event(self, event: Event) -> None:
        await self.inner.on_event(event)


def _host(url: str, *, declared: int | None = 8, threshold: int = 100,
          budget: float = 5) -> PluginHost:
    host = PluginHost(event_budget=budget, breaker_threshold=threshold, breaker_cooldown=60,
                      metrics=False)
    plugin = WebhookPlugin([url], SECRET, timeout=4)
    if declared is None:
        host.register(Undeclared(plugin), "webhook")
        return host
    plugin.sink_concurrency = declared
    host.register(plugin, "webhook")
    return host


async def _delivery(store: Store, host: PluginHost, concurrency: int = 8) -> Delivery:
    delivery = Delivery(store, host, poll=0.02, retry_base=0.05, retry_max=0.2, batch=64,
                        concurrency=concurrency)
    await delivery.ensure_groups()
    return delivery


async def _pending(store: Store) -> list[str]:
    outbox = Outbox(store)
    return [p.id for p in await outbox.due(group_name("webhook"), min_idle_ms=0, count=100)]


async def test_distinct_leads_are_delivered_up_to_the_concurrency_at_once(store: Store) -> None:
    receiver = Receiver(hold=8, expect=[f"ld_{i}" for i in range(30)])
    async with receiver.running():
        host = _host(receiver.url)
        assert WebhookPlugin.sink_concurrency == 8 == host.sink_concurrency("webhook")
        delivery = await _delivery(store, host, concurrency=8)
        await _publish(store, [f"ld_{i}" for i in range(30)])
        assert await delivery.round("webhook")
    assert receiver.max_in_flight == 8
    assert sorted(receiver.arrivals) == sorted(f"ld_{i}" for i in range(30))
    assert delivery.delivered == 30 and await _pending(store) == []


async def test_the_setting_caps_what_a_plugin_declares(store: Store) -> None:
    receiver = Receiver(hold=3, expect=[f"ld_{i}" for i in range(12)])
    async with receiver.running():
        delivery = await _delivery(store, _host(receiver.url), concurrency=3)
        await _publish(store, [f"ld_{i}" for i in range(12)])
        await delivery.round("webhook")
    assert receiver.max_in_flight == 3 and delivery.delivered == 12


@pytest.mark.parametrize(("declared", "cap"), [(None, 8), (8, 1), (1, 8)])
async def test_one_at_a_time_when_the_setting_or_the_plugin_says_1(
        store: Store, declared: int | None, cap: int) -> None:
    leads = [f"ld_{i % 3}" for i in range(10)]
    receiver = Receiver(hold=1, expect=leads)
    async with receiver.running():
        delivery = await _delivery(store, _host(receiver.url, declared=declared),
                                   concurrency=cap)
        assert delivery.concurrency("webhook") == 1
        ids = await _publish(store, leads)
        await delivery.round("webhook")
    assert receiver.max_in_flight == 1
    assert [event_id for _, event_id in receiver.order] == ids  # the stream's order


def test_the_setting_reads_leadrouter_sink_concurrency() -> None:
    assert Settings.from_env({}).sink_concurrency == 8
    assert Settings.from_env({"LEADROUTER_SINK_CONCURRENCY": "1"}).sink_concurrency == 1


async def test_a_leads_events_arrive_in_commit_order_while_others_are_in_flight(
        store: Store) -> None:
    leads = []
    for i in range(6):  # ld_a's six events interleaved with other leads' events
        leads += ["ld_a", f"ld_{i}x", f"ld_{i}y"]
    receiver = Receiver(hold=4, expect=leads)
    async with receiver.running():
        delivery = await _delivery(store, _host(receiver.url), concurrency=4)
        ids = await _publish(store, leads)
        await delivery.round("webhook")
    mine = [event_id for lead, event_id in receiver.order if lead == "ld_a"]
    assert mine == [i for i, lead in zip(ids, leads, strict=True) if lead == "ld_a"]
    assert not receiver.overlapped_same_lead  # never two of one lead in flight
    assert receiver.max_in_flight == 4  # while the others overlapped
    assert delivery.delivered == len(leads)


async def test_a_failed_delivery_among_concurrent_ones_is_retried_the_others_acked(
        store: Store) -> None:
    receiver = Receiver(hold=4, expect=[f"ld_{i}" for i in range(8)], fail=frozenset({"ld_5"}))
    async with receiver.running():
        # a short event budget: the retry's backoff is never shorter than it
        delivery = await _delivery(store, _host(receiver.url, budget=0.5), concurrency=4)
        ids = await _publish(store, [f"ld_{i}" for i in range(8)])
        await delivery.round("webhook")
        assert receiver.max_in_flight == 4
        assert delivery.delivered == 7
        assert await _pending(store) == [ids[5]]  # only the failed one is left
        receiver.remaining["ld_5"] += 1  # its retry
        for _ in range(300):
            if delivery.delivered == 8:
                break
            await asyncio.sleep(0.02)  # its backoff: 0.6 s
            await delivery.round("webhook")
    assert receiver.arrivals.count("ld_5") == 2 and await _pending(store) == []


async def test_no_new_delivery_starts_once_the_breaker_opens_mid_batch(store: Store) -> None:
    leads = [f"ld_{i}" for i in range(10)]
    receiver = Receiver(hold=4, expect=leads, fail=frozenset(leads))
    async with receiver.running():
        host = _host(receiver.url, threshold=1)  # the first failure opens it
        delivery = await _delivery(store, host, concurrency=4)
        ids = await _publish(store, leads)
        await delivery.round("webhook")
        assert not host.sink_ready("webhook")
        assert not await delivery.round("webhook")  # open: nothing claimed or attempted
    # four were in flight together when the first failure opened it; no fifth was started
    assert len(receiver.arrivals) == 4 and receiver.max_in_flight == 4
    assert sorted(await _pending(store)) == sorted(ids)  # all ten kept for later
    assert delivery.delivered == 0


@pytest.mark.parametrize("value", ["4", 0, 2.5, True])
def test_a_declaration_that_is_not_an_int_of_at_least_1_means_one_at_a_time(
        value: Any, caplog: pytest.LogCaptureFixture) -> None:
    plugin = WebhookPlugin(["http://127.0.0.1:9/hook"], SECRET)
    plugin.sink_concurrency = value
    host = PluginHost(metrics=False)
    host.register(plugin, "webhook")
    assert host.sink_concurrency("webhook") == 1
    assert "sink_concurrency must be an int >= 1" in caplog.text
