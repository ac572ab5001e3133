"""Outbox delivery to on_event sinks against a real Valkey: ack on return, retry with backoff,
dead letters (at once for a refused event), independent sinks, several consumers, a consumer
that died, the breaker, the notification counts, the lead's keys in the event."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest
from leadrouter_sdk import Event, PermanentDeliveryError, hookimpl

from router.observability import metrics
from router.plugins.delivery import Delivery, group_name
from router.plugins.host import PluginHost
from router.state.outbox import Outbox
from router.state.store import Store

pytestmark = pytest.mark.anyio


class Sink:
    def __init__(self, name: str, fail: int = 0, refuse: frozenset[str] = frozenset()) -> None:
        self.name = name
        self.fail = fail  # fail this many deliveries first
        self.refuse = refuse  # lead ids refused for good
        self.events: list[Event] = []
        self.attempts: list[tuple[str, int]] = []

    @hookimpl
    async def on_event(self, event: Event) -> None:
        self.attempts.append((event.id, event.attempt))
        if event.lead_id in self.refuse:
            raise PermanentDeliveryError(f"rep r1 has no CRM owner id (lead {event.lead_id})")
        if self.fail > 0:
            self.fail -= 1
            raise ConnectionError("receiver down")
        self.events.append(event)


def _host(*sinks: Sink, threshold: int = 100, counted: bool = False) -> PluginHost:
    host = PluginHost(event_budget=0.2, breaker_threshold=threshold, breaker_cooldown=0.3,
                      metrics=counted)
    for sink in sinks:
        host.register(sink, sink.name)
    return host


async def _publish(store: Store, n: int, start: int = 0) -> list[str]:
    ids = []
    for i in range(start, start + n):
        reply = await store.wire.call(
            "XADD", store.keys.outbox, "*", "type", "lead.assigned", "lead_id", f"ld_{i}",
            "at", 1714564800000 + i, "owner", "r1", "due_at", "", "decision",
            '{"status":"mql"}')
        ids.append(reply.decode())
    return ids


async def _until(predicate: Any, delivery: Delivery, plugin: str, timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached")
        if not await delivery.round(plugin):
            await asyncio.sleep(0.02)


@pytest.fixture
async def store(redis_url: str) -> Any:
    s = await Store.connect(redis_url)
    yield s
    await s.close()


def _delivery(store: Store, host: PluginHost, **kw: Any) -> Delivery:
    kw = {"poll": 0.02, "retry_base": 0.05, "retry_max": 0.2, "max_attempts": 5, **kw}
    return Delivery(store, host, **kw)


async def test_events_are_delivered_once_and_acked(store: Store) -> None:
    sink = Sink("a")
    delivery = _delivery(store, _host(sink))
    await delivery.ensure_groups()
    ids = await _publish(store, 5)
    await _until(lambda: len(sink.events) == 5, delivery, "a")
    assert [e.id for e in sink.events] == ids
    first = sink.events[0]
    assert (first.type, first.lead_id, first.attempt) == ("lead.assigned", "ld_0", 1)
    assert first.at == dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    assert first.data == {"owner": "r1", "decision": {"status": "mql"}}
    stats = await Outbox(store).stats(group_name("a"))
    assert stats is not None and (stats.pending, stats.lag) == (0, 0)
    assert not await delivery.round("a")  # nothing left: nothing redelivered


async def test_a_new_group_starts_at_the_end_of_the_stream(store: Store) -> None:
    await _publish(store, 3)  # before the sink existed: not replayed
    sink = Sink("late")
    delivery = _delivery(store, _host(sink))
    await delivery.ensure_groups()
    ids = await _publish(store, 2, start=3)
    await _until(lambda: len(sink.events) == 2, delivery, "late")
    assert [e.id for e in sink.events] == ids


async def test_failed_deliveries_are_retried_with_backoff_until_they_succeed(
        store: Store) -> None:
    sink = Sink("flaky", fail=6)
    delivery = _delivery(store, _host(sink))
    await delivery.ensure_groups()
    ids = await _publish(store, 3)
    await _until(lambda: len(sink.events) == 3, delivery, "flaky")
    assert sorted(e.id for e in sink.events) == ids
    per_event: dict[str, list[int]] = {}
    for event_id, attempt in sink.attempts:
        per_event.setdefault(event_id, []).append(attempt)
    assert all(a == list(range(1, len(a) + 1)) for a in per_event.values()), per_event
    assert max(len(a) for a in per_event.values()) >= 3
    stats = await Outbox(store).stats(group_name("flaky"))
    assert stats is not None and stats.pending == 0
    assert delivery.backoff_ms(1) == delivery.backoff_ms(9) == 300  # never under budget+0.1
    schedule = _delivery(store, _host(), retry_base=1, retry_max=60)
    assert [schedule.backoff_ms(n) for n in (1, 2, 3, 7, 8)] == [1000, 2000, 4000, 60000, 60000]


async def test_after_max_attempts_an_event_goes_to_the_dead_letter_stream(store: Store) -> None:
    sink = Sink("broken", fail=10**6)
    delivery = _delivery(store, _host(sink), max_attempts=3, retry_max=0.05)
    await delivery.ensure_groups()
    (event_id,) = await _publish(store, 1)
    outbox = Outbox(store)
    await _until(lambda: delivery.dead == 1, delivery, "broken")
    assert [a for _, a in sink.attempts] == [1, 2, 3]
    (dead,) = await outbox.dead_letters()
    assert dead.fields["outbox_id"] == event_id
    assert dead.fields["sink"] == "sink:broken"
    assert dead.fields["attempts"] == "3"
    assert "receiver down" in dead.fields["error"]
    assert dead.fields["permanent"] == "0"  # out of attempts, not refused
    assert dead.fields["lead_id"] == "ld_0"
    stats = await outbox.stats(group_name("broken"))
    assert stats is not None and stats.pending == 0


async def test_sinks_are_independent(store: Store) -> None:
    good, bad = Sink("good"), Sink("bad", fail=10**6)
    delivery = _delivery(store, _host(good, bad))
    await delivery.ensure_groups()
    await _publish(store, 4)
    await _until(lambda: len(good.events) == 4, delivery, "good")
    await delivery.round("bad")
    assert not bad.events
    stats = await Outbox(store).stats(group_name("bad"))
    assert stats is not None and stats.pending == 4  # kept for the broken sink only


async def test_several_workers_deliver_each_event_once(store: Store, redis_url: str) -> None:
    sink = Sink("shared")
    host = _host(sink)
    other_store = await Store.connect(redis_url)
    try:
        workers = [_delivery(store, host), _delivery(other_store, host)]
        await workers[0].ensure_groups()
        await _publish(store, 40)
        tasks = [asyncio.create_task(w.run()) for w in workers]
        try:
            for _ in range(200):
                if len(sink.events) >= 40:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)  # time for a duplicate to show up, if any
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        ids = [e.id for e in sink.events]
        assert len(ids) == 40 and len(set(ids)) == 40
        assert workers[0].delivered > 0 and workers[1].delivered > 0
    finally:
        await other_store.close()


async def test_events_read_by_a_consumer_that_died_are_delivered_by_another(
        store: Store) -> None:
    sink = Sink("crash")
    host = _host(sink)
    await _delivery(store, host).ensure_groups()
    ids = await _publish(store, 3)
    outbox = Outbox(store)
    # a worker read them and died before delivering (no ack): they stay pending for it
    taken = await outbox.read_new(group_name("crash"), "dead-worker", 10)
    assert [e.id for e in taken] == ids
    survivor = _delivery(store, host)
    await _until(lambda: len(sink.events) == 3, survivor, "crash")
    assert [e.attempt for e in sink.events] == [2, 2, 2]
    assert [e.id for e in sink.events] == ids


async def test_an_open_breaker_pauses_the_sink_and_loses_nothing(store: Store) -> None:
    sink = Sink("tripped", fail=3)
    host = _host(sink, threshold=3)
    delivery = _delivery(store, host)
    await delivery.ensure_groups()
    await _publish(store, 10)
    await delivery.round("tripped")  # three failures open the breaker: delivery stops
    assert len(sink.attempts) == 3
    assert not host.sink_ready("tripped")
    assert not await delivery.round("tripped")  # open: nothing is claimed or attempted
    assert len(sink.attempts) == 3
    stats = await Outbox(store).stats(group_name("tripped"))
    assert stats is not None and stats.pending + (stats.lag or 0) == 10  # all kept
    await _until(lambda: len(sink.events) == 10, delivery, "tripped")  # after the cool-down
    assert len({e.id for e in sink.events}) == 10


def _counted(channel: str) -> dict[str, float]:
    return {o: metrics.sample_value("leadrouter_notifications_total",
                                    {"channel": channel, "outcome": o})
            for o in ("delivered", "retried", "dead")}


async def test_a_refused_event_is_dead_lettered_at_once_without_tripping_the_breaker(
        store: Store) -> None:
    sink = Sink("refusing", refuse=frozenset({"ld_0", "ld_1"}))
    host = _host(sink, threshold=1, counted=True)  # one failure would open the breaker
    delivery = _delivery(store, host, max_attempts=25, retry_base=60, retry_max=600)
    before = _counted("refusing")
    await delivery.ensure_groups()
    ids = await _publish(store, 4)
    await _until(lambda: delivery.dead == 2 and len(sink.events) == 2, delivery, "refusing")
    assert sink.attempts == [(i, 1) for i in ids]  # each tried once: no retry, no backoff
    assert host.sink_ready("refusing") and host.plugins()[0].breakers == {}
    dead = {d.fields["lead_id"]: d for d in await Outbox(store).dead_letters()}
    assert sorted(dead) == ["ld_0", "ld_1"]
    for lead_id, d in dead.items():
        assert d.fields["error"] == f"rep r1 has no CRM owner id (lead {lead_id})"
        assert (d.fields["attempts"], d.fields["permanent"]) == ("1", "1")
        assert d.fields["sink"] == "sink:refusing"
    stats = await Outbox(store).stats(group_name("refusing"))
    assert stats is not None and stats.pending == 0
    assert host.counts[("refusing", "on_event", "rejected")] == 2
    after = _counted("refusing")
    assert {o: after[o] - before[o] for o in after} == {"delivered": 2, "retried": 0, "dead": 2}


async def test_a_retried_event_is_counted_retried_then_delivered(store: Store) -> None:
    sink = Sink("flaky-counted", fail=1)
    delivery = _delivery(store, _host(sink, counted=True))
    before = _counted("flaky-counted")
    await delivery.ensure_groups()
    await _publish(store, 1)
    await _until(lambda: len(sink.events) == 1, delivery, "flaky-counted")
    after = _counted("flaky-counted")
    assert {o: after[o] - before[o] for o in after} == {"delivered": 1, "retried": 1, "dead": 0}
    assert [a for _, a in sink.attempts] == [1, 2]


async def test_events_carry_the_lead_keys_of_the_stored_decision(store: Store) -> None:
    sink = Sink("keys")
    delivery = _delivery(store, _host(sink))
    await delivery.ensure_groups()
    record = {"status": "mql", "source": "hubspot",
              "lead": {"email": "ann@acme.example", "external_id": "hubspot:1:501"}}
    for decision in (json.dumps(record), json.dumps({"status": "mql", "lead": {}}), ""):
        await store.wire.call("XADD", store.keys.outbox, "*", "type", "lead.assigned",
                              "lead_id", "ld_k", "owner", "r1", "decision", decision)
    await _until(lambda: len(sink.events) == 3, delivery, "keys")
    full, bare, none = (e.data for e in sink.events)
    assert (full["external_id"], full["email"], full["source"]) == (
        "hubspot:1:501", "ann@acme.example", "hubspot")
    assert full["decision"]["lead"]["email"] == "ann@acme.example"  # lifted, not moved
    for data in (bare, none):
        assert not {"external_id", "email", "source"} & set(data)


async def test_an_unexpected_error_does_not_end_a_sinks_loop(store: Store) -> None:
    """Only Redis outages were caught: any other exception in a round ended the sink's loop
    task for good, and its events waited in the outbox until a restart."""
    delivery = _delivery(store, _host(Sink("a")))
    calls = 0

    async def failing_once(plugin: str) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("a bug in one round")
        return False

    delivery.round = failing_once  # type: ignore[method-assign]
    task = asyncio.create_task(delivery._loop("a"))
    try:
        deadline = asyncio.get_running_loop().time() + 10  # "did not recover", not a timing
        while calls < 3 and not task.done():
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.05)
        assert not task.done(), task.exception()
        assert calls >= 3
    finally:
        task.cancel()
