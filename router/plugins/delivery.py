"""Delivering outbox events to ``on_event`` sinks, at least once (see router/state/outbox.py).

One :class:`Delivery` per service process runs one loop per sink. Each round the loop

1. retries pending entries whose backoff has passed: ``base * 2**(deliveries-1)`` seconds,
   capped at ``retry_max``, and never less than the event budget plus a margin (so an entry
   another worker is still delivering is not taken from it); an entry already delivered
   ``max_attempts`` times goes to the dead-letter stream instead;
2. reads new entries and delivers them: up to :meth:`Delivery.concurrency` at once (what the
   plugin declared as ``sink_concurrency``, capped by ``LEADROUTER_SINK_CONCURRENCY``; 1 when
   it declared nothing), the entries of one lead one after another in stream order, and
   reads the next batch only once every delivery of this one has ended;

acknowledging each entry only once the sink returned (retries stay one at a time: they are
few, and backoff reorders them anyway). A sink that raises
``PermanentDeliveryError`` (the SDK) refuses the event for good: it goes to the dead-letter
stream at once, its message as the reason, without retries, backoff or a breaker failure.
While a sink's circuit breaker is open the loop claims nothing for it (entries wait in the
stream). When there is nothing to do it sleeps ``poll`` seconds. Redis being down pauses
delivery; nothing is lost.

``leadrouter_notifications_total{channel,outcome}`` counts every delivery attempt by its end:
``delivered`` (acked), ``retried`` (failed, will be tried again), ``dead`` (dead-lettered,
refused for good or out of attempts); ``channel`` is the plugin's name.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import msgspec
from leadrouter_sdk import Event

from router.plugins._metrics import notifications
from router.plugins.host import DeliveryFailed, DeliveryRejected, PluginHost
from router.state.errors import StateError
from router.state.outbox import Outbox, OutboxEntry
from router.state.store import Store

__all__ = ["Delivery", "group_name", "run_sinks", "with_owner_timezone"]

log = logging.getLogger("leadrouter.outbox")

_PRUNE_IDLE_MS = 3600_000


def group_name(plugin: str) -> str:
    return f"sink:{plugin}"


class Delivery:
    def __init__(self, store: Store, host: PluginHost, *, poll: float = 0.2,
                 batch: int = 32, max_attempts: int = 12, retry_base: float = 1.0,
                 retry_max: float = 300.0, concurrency: int = 8,
                 clock: Callable[[], dt.datetime] | None = None,
                 enrich: Callable[[Event], Event] | None = None) -> None:
        self.outbox = Outbox(store)
        # What the service adds to each event on its way to a sink (the app wires the signed
        # action links here: router/services/action_links.py); this layer imports no service.
        self.enrich = enrich
        self.host = host
        self.poll = poll
        self.batch = batch
        self.max_attempts = max(1, max_attempts)
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.max_concurrency = max(1, concurrency)  # LEADROUTER_SINK_CONCURRENCY
        self.now = clock or (lambda: dt.datetime.now(dt.UTC))
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
        self.delivered = 0
        self.retried = 0
        self.dead = 0
        self.last_error: dict[str, str] = {}
        self._ready: set[str] = set()
        self._counted = {plugin: notifications(plugin, host.metrics) for plugin in host.sinks}

    def concurrency(self, plugin: str) -> int:
        """How many new entries of ``plugin`` may be in flight at once: what the plugin
        declared (``sink_concurrency``), capped by the setting."""
        return max(1, min(self.host.sink_concurrency(plugin), self.max_concurrency))

    def backoff_ms(self, deliveries: int) -> int:
        """How long an entry delivered ``deliveries`` times waits before the next attempt."""
        delay = min(self.retry_base * 2 ** max(0, deliveries - 1), self.retry_max)
        # A delivery in flight ends (or is cancelled) within the event budget: wait longer.
        budget = self.host.event_budget
        return int(max(delay, budget + max(0.1, budget / 5)) * 1000)

    async def ensure_groups(self) -> None:
        """Create every sink's consumer group (at the stream's end) before serving, so no
        event committed from now on is missed. Raises StateError when Redis is down."""
        for plugin in self.host.sinks:
            group = group_name(plugin)
            if await self.outbox.ensure_group(group):
                log.info("outbox: created consumer group %s", group)
            with contextlib.suppress(StateError):
                await self.outbox.prune_consumers(group, idle_ms=_PRUNE_IDLE_MS)
            self._ready.add(plugin)

    async def run(self) -> None:
        """Deliver forever (cancel to stop): one task per sink."""
        sinks = self.host.sinks
        if not sinks:
            return
        await asyncio.gather(*(self._loop(plugin) for plugin in sinks))

    async def _loop(self, plugin: str) -> None:
        group = group_name(plugin)
        while True:
            try:
                if plugin not in self._ready:
                    await self.outbox.ensure_group(group)
                    self._ready.add(plugin)
                busy = await self.round(plugin)
            except StateError as exc:
                log.warning("outbox delivery to %s paused: %s", plugin, exc)
                busy = False
                await asyncio.sleep(max(self.poll, 1.0))
            except Exception:
                # Anything else (a bug, a malformed entry) must not end this sink's loop for
                # good: its events would wait in the outbox until a restart.
                log.exception("outbox delivery to %s: unexpected error; retrying", plugin)
                busy = False
                await asyncio.sleep(max(self.poll, 1.0))
            if not busy:
                await asyncio.sleep(self.poll)

    async def round(self, plugin: str) -> bool:
        """One pass for one sink: due retries, then new entries. True if it did anything."""
        group = group_name(plugin)
        host, outbox = self.host, self.outbox
        busy = False
        if not host.sink_ready(plugin):
            return False
        for p in await outbox.due(group, min_idle_ms=self.backoff_ms(1), count=self.batch):
            wait = self.backoff_ms(p.deliveries)
            if p.idle_ms < wait:
                continue
            claimed = await outbox.claim(group, self.consumer, [p.id], wait)
            if not claimed:
                continue  # another worker took it, or it was trimmed away
            busy = True
            entry = claimed[0]
            if p.deliveries >= self.max_attempts:
                await self._dead_letter(plugin, entry, p.deliveries)
                continue
            self.retried += 1
            await self._deliver(plugin, entry, p.deliveries + 1)
            if not host.sink_ready(plugin):
                return busy
        entries = await outbox.read_new(group, self.consumer, self.batch)
        if entries:
            await self._deliver_new(plugin, entries)
        return busy or bool(entries)

    async def _deliver_new(self, plugin: str, entries: list[OutboxEntry]) -> None:
        """Deliver a batch of new entries (first attempts), returning once every delivery it
        started has ended, so no event of a later batch overtakes one of this batch.

        Up to :meth:`concurrency` at once, one lane per lead: a lead's events go one after
        another in stream (commit) order, because receivers apply them as a state machine
        (``lead.accepted`` before its ``lead.assigned`` would be refused or undone); other
        leads' events overlap, which is what makes a slow API (100-300 ms a call) drain a
        burst in time. An entry whose lane does not get to it (breaker not ready, a Redis
        error) stays pending for the retry path, as an entry not yet read would."""
        host = self.host
        limit = self.concurrency(plugin)
        if limit == 1:  # the plugin did not say its calls may overlap: strictly in order
            for entry in entries:
                if not host.sink_ready(plugin):
                    return  # left pending: retried once the breaker lets a trial through
                await self._deliver(plugin, entry, 1)
            return
        slots = asyncio.Semaphore(limit)
        broken: list[Exception] = []

        async def lane(group: list[OutboxEntry]) -> None:
            for entry in group:
                async with slots:
                    # Nothing is awaited between this check and the breaker's allow() in
                    # host.deliver: an open breaker, or a half-open one whose single trial
                    # is in flight, starts no new delivery.
                    if broken or not host.sink_ready(plugin):
                        return
                    try:
                        await self._deliver(plugin, entry, 1)
                    except Exception as exc:  # Redis down on the ack...: stop every lane
                        broken.append(exc)
                        return

        await asyncio.gather(*(lane(group) for group in _by_lead(entries)))
        if broken:
            raise broken[0]  # the loop handles it as it did when delivering one at a time

    def _event(self, entry: OutboxEntry, attempt: int) -> Event:
        event = entry.event(attempt)
        if self.enrich is None:
            return event
        try:
            return self.enrich(event)
        except Exception:  # an enricher's bug must not stop delivery: the event goes as is
            log.exception("outbox: enriching %s failed; delivered without", entry.id)
            return event

    def _count(self, plugin: str, outcome: str) -> None:
        counted = self._counted.get(plugin)
        if counted is None:
            counted = self._counted[plugin] = notifications(plugin, self.host.metrics)
        counted[outcome].inc()

    async def _deliver(self, plugin: str, entry: OutboxEntry, attempt: int) -> bool:
        try:
            await self.host.deliver(plugin, self._event(entry, attempt))
        except DeliveryRejected as exc:
            self.last_error.pop(entry.id, None)
            await self._dead_letter(plugin, entry, attempt, str(exc))
            return False
        except DeliveryFailed as exc:
            self.last_error[entry.id] = str(exc)
            if len(self.last_error) > 10_000:
                self.last_error.clear()
            if attempt < self.max_attempts:  # the last one is counted when dead-lettered
                self._count(plugin, "retried")
            log.info("outbox: %s did not take %s (attempt %d): %s", plugin, entry.id,
                     attempt, exc)
            return False
        await self.outbox.ack(group_name(plugin), [entry.id])
        self.last_error.pop(entry.id, None)
        self.delivered += 1
        self._count(plugin, "delivered")
        return True

    async def _dead_letter(self, plugin: str, entry: OutboxEntry, attempts: int,
                           refused: str | None = None) -> None:
        """Move ``entry`` to the dead-letter stream: ``refused`` (the sink's reason) when it
        refused the event for good, else after ``attempts`` failed deliveries."""
        if refused is not None:
            error = refused
        else:
            error = self.last_error.pop(entry.id,
                                        "delivery failed (error not seen by this process)")
        await self.outbox.dead_letter(group_name(plugin), entry, attempts=attempts, error=error,
                                      now=self.now(), permanent=refused is not None)
        self.dead += 1
        self._count(plugin, "dead")
        if refused is not None:
            log.error("outbox: %s refused %s for good (attempt %d), moved to the dead-letter "
                      "stream: %s", plugin, entry.id, attempts, error)
        else:
            log.error("outbox: %s gave up on %s after %d attempts, moved to the dead-letter "
                      "stream: %s", plugin, entry.id, attempts, error)


def _by_lead(entries: list[OutboxEntry]) -> list[list[OutboxEntry]]:
    """``entries`` grouped by the event's lead, each group in stream order, the groups in
    order of their first entry; an entry without a lead id is a group of its own."""
    groups: dict[str, list[OutboxEntry]] = {}
    for entry in entries:
        lead = entry.fields.get("lead_id") or f"\0{entry.id}"
        groups.setdefault(lead, []).append(entry)
    return list(groups.values())


def with_owner_timezone(reps: Callable[[], Mapping[str, Any]],
                        then: Callable[[Event], Event] | None = None) -> Callable[[Event], Event]:
    """An enricher adding ``data["owner_timezone"]``: the owner's IANA zone from the live
    rules/reps.yaml (``reps()`` → rep id → spec with ``timezone``), so a channel can show the
    due time in the rep's own zone; then ``then`` (e.g. the action links)."""
    def enrich(event: Event) -> Event:
        owner = event.data.get("owner")
        spec = reps().get(owner) if isinstance(owner, str) and owner else None
        zone = getattr(spec, "timezone", None)
        if isinstance(zone, str) and zone and "owner_timezone" not in event.data:
            event = msgspec.structs.replace(event, data={**event.data, "owner_timezone": zone})
        return then(event) if then is not None else event
    return enrich


@contextlib.asynccontextmanager
async def run_sinks(store: Store, host: PluginHost, settings: Any,
                    enrich: Callable[[Event], Event] | None = None) -> AsyncIterator[None]:
    """Deliver outbox events to ``host``'s sinks while the block runs (the app lifespan).
    The consumer groups are created first, so no event committed while serving is missed.
    ``enrich`` adds to each event before a sink sees it (the action links)."""
    if not host.sinks:
        yield
        return
    delivery = Delivery(store, host, poll=settings.outbox_poll_seconds,
                        max_attempts=settings.outbox_max_attempts,
                        retry_base=settings.outbox_retry_seconds,
                        retry_max=settings.outbox_retry_max_seconds,
                        concurrency=settings.sink_concurrency, enrich=enrich)
    try:
        await delivery.ensure_groups()
    except StateError as exc:  # Redis down at start: the loops create the groups later
        log.warning("outbox: cannot create consumer groups yet: %s", exc)
    task = asyncio.create_task(delivery.run(), name="outbox-delivery")
    try:
        yield
    finally:
        task.cancel()  # an event being delivered stays pending: redelivered later
        with contextlib.suppress(asyncio.CancelledError):
            await task
