"""What a CRM owner write-back plugin does besides the vendor's API calls.

Shared by ``leadrouter-hubspot-owner`` and ``leadrouter-salesforce-owner`` (and any other
write-back a plugin author builds). It needs httpx, which the SDK itself does not depend on:
a plugin that imports this module declares httpx among its own dependencies.

* **Failures**: :class:`RetryableError` (429, 5xx, network, expired credentials: the outbox
  delivers the event again with its backoff) and :class:`PermanentError` (a rep missing from
  the owner map, an unknown contact, a field the CRM refuses: retrying cannot help), the SDK's
  ``PermanentDeliveryError``: the outbox dead-letters the event at once with its message.
* **Retry-After**: a wait up to ``inline_wait`` seconds is slept through inside the delivery;
  a longer one makes every delivery fail fast, without calling the CRM, until it has passed.
* **The lead's identifiers** come with the event (``event.data["external_id"]``, ``["email"]``,
  ``["source"]``, taken by the service from the stored decision the outbox entry carries): any
  worker, before or after a restart, can write the owner back; nothing is kept per lead.
* **Counts**: the service counts every delivery in
  ``leadrouter_notifications_total{channel="<plugin>",outcome}``; this module only logs.
* **Concurrency**: :class:`WriteBack` declares ``sink_concurrency = 4``: the service may run
  up to four of its deliveries at once (capped by ``LEADROUTER_SINK_CONCURRENCY``; one lead's
  events still one after another). What it keeps is safe to share between them: the per-loop
  httpx client, the Retry-After deadline (only pushed later: once the CRM asks to wait, every
  delivery fails fast until then), the memo of steps done (changed between awaits only). A
  subclass that refreshes a shared credential (an OAuth token) does it under
  :meth:`WriteBack.credentials_lock`, checking again once it holds it, so several deliveries
  that find it expired at once make one refresh; a subclass that cannot be made safe sets
  ``sink_concurrency = 1``.
* **No PII in logs or errors**: rep ids, owner ids, CRM record ids and lead ids only; e-mail
  addresses in a vendor's error text are masked.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import httpx
import msgspec

from leadrouter_sdk import Event, PermanentDeliveryError, hookimpl
from leadrouter_sdk.http import LoopClients, PerLoop

__all__ = ["LeadKeys", "PermanentError", "RetryableError", "WriteBack", "parse_map",
           "retry_after", "scrub"]

_MEMO_MAX: Final = 10_000
_EMAIL: Final = re.compile(r"[^\s\"'<>(),;:@]+@[^\s\"'<>(),;:@]+")
DEFAULT_EVENTS: Final = ("lead.assigned", "lead.reassigned")


class WriteBackError(Exception):
    """A write-back that did not happen; the message says what to fix (no PII)."""


class RetryableError(WriteBackError):
    """Try again later (``retry_after`` seconds, when the CRM said so)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(WriteBackError, PermanentDeliveryError):
    """Retrying cannot help: the mapping or the record must be fixed (dead-lettered at once)."""


class LeadKeys(msgspec.Struct, frozen=True, kw_only=True):
    """How to find the lead's CRM record, as the event carries it."""

    external_id: str | None = None
    email: str | None = None
    source: str | None = None


def scrub(text: str, limit: int = 300) -> str:
    """A vendor's error text, e-mail addresses masked, shortened."""
    return _EMAIL.sub("<email>", text)[:limit]


def parse_map(text: str | None) -> dict[str, str]:
    """``alice=123, bob=456`` → ``{"alice": "123", "bob": "456"}``; raises ValueError."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        rep, sep, ref = part.partition("=")
        if not sep or not rep.strip() or not ref.strip():
            raise ValueError(f"owner map entry {part.strip()!r} must be rep=owner_id")
        out[rep.strip()] = ref.strip()
    return out


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait per a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def transient(response: httpx.Response, what: str) -> RetryableError | None:
    """The retryable error of a 429 / 5xx answer, else None."""
    if response.status_code == 429 or response.status_code >= 500:
        return RetryableError(f"{what}: HTTP {response.status_code} (retried)",
                              retry_after(response.headers.get("retry-after")))
    return None


def due_at(event: Event) -> dt.datetime | None:
    value = event.data.get("due_at")
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    if isinstance(value, str) and value:
        try:
            return dt.datetime.fromisoformat(value).astimezone(dt.UTC)
        except ValueError:
            return None
    return None


class WriteBack:
    """The vendor-neutral part of a write-back plugin; subclasses implement :meth:`write`."""

    channel = "crm"
    owners_setting = "owner map"
    tasks = False  # create a follow-up task due at the SLA deadline (subclasses' setting)
    # How many deliveries the service may run at once (see the module docstring): four keeps
    # a CRM's request limits in sight (HubSpot: 100-190 calls per 10 s per app).
    sink_concurrency = 4

    def __init__(self, *, owners: Mapping[str, str], events: Iterable[str] | None,
                 timeout: float, inline_wait: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.owners = dict(owners)
        self.events = frozenset(events or DEFAULT_EVENTS)
        self.timeout = timeout
        self.inline_wait = inline_wait
        self.clock = clock
        self.log = logging.getLogger(f"leadrouter.plugins.{self.channel}")
        self._done: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._not_before = 0.0
        self._clients = LoopClients()
        self._locks: PerLoop[asyncio.Lock] = PerLoop()

    # -- plumbing for subclasses -------------------------------------------------------------

    def client(self) -> httpx.AsyncClient:
        return self._clients.get(timeout=self.timeout,
                                 user_agent=f"leadrouter-{self.channel}-owner/0.1.0")

    def credentials_lock(self) -> asyncio.Lock:
        """The lock to hold while refreshing a credential the deliveries share::

            async with self.credentials_lock():
                if self._token is None or expired:  # again: another delivery may have
                    self._token = await fetch()     # refreshed it while this one waited

        One per running event loop, like the clients (an asyncio.Lock belongs to one loop)."""
        return self._locks.get(asyncio.Lock)

    async def send(self, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
        """One request; a network error or a 429/5xx answer raises RetryableError."""
        try:
            response = await self.client().request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise RetryableError(f"{what}: {type(exc).__name__} (retried)") from exc
        error = transient(response, what)
        if error is not None:
            raise error
        return response

    def owner_ref(self, rep: str) -> str:
        ref = self.owners.get(rep)
        if ref is None:
            raise PermanentError(f"rep {rep!r} has no {self.channel} owner id: add "
                                 f"`{rep}=<id>` to {self.owners_setting}")
        return ref

    def keys(self, event: Event, *, required: bool = True) -> LeadKeys:
        """The lead's identifiers the event carries; none (and ``required``) is permanent."""
        def text(name: str) -> str | None:
            value = event.data.get(name)
            return value if isinstance(value, str) and value else None

        keys = LeadKeys(external_id=text("external_id"), email=text("email"),
                        source=text("source"))
        if required and keys.external_id is None and keys.email is None:
            raise PermanentError(f"lead {event.lead_id} came with neither an external id nor "
                                 f"an email: nothing to find its {self.channel} record by")
        return keys

    def once(self, event: Event, step: str) -> bool:
        """False if ``step`` of this event already succeeded in this process."""
        return (event.id, step) not in self._done

    def did(self, event: Event, step: str) -> None:
        self._done[(event.id, step)] = None
        if len(self._done) > _MEMO_MAX:
            self._done.popitem(last=False)

    async def write(self, event: Event, rep: str) -> str:
        """Write the owner; return a short summary for the log (no PII)."""
        raise NotImplementedError

    async def create_task(self, event: Event, record: str, owner_id: str,
                          due: dt.datetime) -> str:
        """Create the follow-up task on ``record`` for ``owner_id``; return its id."""
        raise NotImplementedError

    async def follow_up(self, event: Event, record: str, owner_id: str, label: str) -> str:
        """The follow-up task, when :attr:`tasks` is on and the lead has an SLA deadline, once
        per event: ``", <label> <id>"`` for the log summary, else ``""``."""
        due = due_at(event)
        if not (self.tasks and due is not None and self.once(event, "task")):
            return ""
        task = await self.create_task(event, record, owner_id, due)
        self.did(event, "task")
        return f", {label} {task}"

    # -- hooks -------------------------------------------------------------------------------

    @hookimpl
    async def on_event(self, event: Event) -> None:
        rep = event.data.get("owner")
        if event.type not in self.events or not isinstance(rep, str) or not rep:
            return
        wait = self._not_before - self.clock()
        if wait > 0:
            raise RetryableError(f"{self.channel} asked to wait: retry in {wait:.1f} s")
        try:
            summary = await self._attempt(event, rep)
        except PermanentError as exc:
            self.log.error("%s owner write-back for lead %s (rep %s) rejected, it will be "
                           "dead-lettered: %s", self.channel, event.lead_id, rep, exc)
            raise
        except RetryableError as exc:
            if exc.retry_after:
                self._not_before = max(self._not_before, self.clock() + exc.retry_after)
            self.log.warning("%s owner write-back for lead %s (rep %s) will be retried: %s",
                             self.channel, event.lead_id, rep, exc)
            raise
        self.log.info("%s owner write-back for lead %s: %s", self.channel, event.lead_id,
                      summary)

    async def _attempt(self, event: Event, rep: str) -> str:
        try:
            return await self.write(event, rep)
        except RetryableError as exc:
            if exc.retry_after is None or exc.retry_after > self.inline_wait:
                raise
            await asyncio.sleep(exc.retry_after)
        return await self.write(event, rep)
