"""leadrouter plugin: POST lead events to HTTP endpoints, signed per Standard Webhooks.

Every event the service records (``lead.assigned``, ``lead.queued``, ``lead.accepted``,
``lead.reassigned``, ``lead.breached``, ``lead.recycled``...) reaches this plugin's ``on_event``
through the core's durable outbox, at least once; it POSTs a JSON body to every configured URL::

    {"type": "lead.assigned", "timestamp": "2024-05-01T12:00:00.123000+00:00",
     "data": {"lead_id": "ld_...", "owner": "alice", "pool": "na-ent", "decision": {...}}}

with the headers of the `Standard Webhooks <https://www.standardwebhooks.com/>`_ spec:

* ``webhook-id``: the event id, the same on every retry (receivers drop duplicates with it);
* ``webhook-timestamp``: Unix seconds of this attempt (receivers reject old ones);
* ``webhook-signature``: ``v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}.{body}")>``, one per
  configured secret (space-separated, for key rotation).

A non-2xx answer or a network error raises, so the outbox retries the event later with backoff
(and moves it to the dead-letter stream after the configured attempts). With several URLs, one
that already took the event is not sent it again when another one failed (within a process).

Configuration (environment):

* ``LEADROUTER_WEBHOOK_URLS``: comma-separated endpoint URLs (none: the plugin is disabled);
* ``LEADROUTER_WEBHOOK_SECRET``: ``whsec_<base64 key>`` (the spec's format) or any other text,
  used as the key bytes as is; comma-separated for several (required);
* ``LEADROUTER_WEBHOOK_EVENTS``: comma-separated event types to send (default: all);
* ``LEADROUTER_WEBHOOK_TIMEOUT``: seconds per request (default 5).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import httpx
import msgspec
from leadrouter_sdk import Event, PluginDisabled, hookimpl
from leadrouter_sdk.http import LoopClients

__all__ = ["WebhookError", "WebhookPlugin", "sign", "signing_key", "verify"]
__version__ = "0.1.0"

_TOLERANCE_S: Final = 300
_DONE_MAX: Final = 10_000


class WebhookError(Exception):
    """An endpoint did not take the event (the outbox will retry)."""


def signing_key(secret: str) -> bytes:
    """The HMAC key of a secret: ``whsec_`` + base64 per the spec, else the text's bytes."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_"):])
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 signature>`` of one message."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: Mapping[str, str], body: bytes, *,
           tolerance: int = _TOLERANCE_S, now: float | None = None) -> bool:
    """Check a received webhook: a signature matches and the timestamp is recent."""
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp = lowered.get("webhook-id", ""), lowered.get("webhook-timestamp", "")
    if not msg_id or not stamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(stamp)) > tolerance:
        return False
    expected = sign(secret, msg_id, int(stamp), body).split(",", 1)[1]
    for candidate in lowered.get("webhook-signature", "").split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


_encoder = msgspec.json.Encoder()


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


class WebhookPlugin:
    """The plugin. Arguments default to the ``LEADROUTER_WEBHOOK_*`` environment variables."""

    name = "webhook"
    # Deliveries may overlap (the service caps it, LEADROUTER_SINK_CONCURRENCY): the
    # per-loop httpx client pools connections for concurrent requests, and what this object
    # keeps (the URLs an event already reached) is only changed between awaits.
    sink_concurrency = 8

    def __init__(self, urls: Sequence[str] | None = None, secret: str | Sequence[str] | None
                 = None, *, events: Iterable[str] | None = None, timeout: float | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        env = os.environ
        self.urls = list(urls) if urls is not None else _split(env.get("LEADROUTER_WEBHOOK_URLS"))
        if not self.urls:
            raise PluginDisabled("no endpoint: set LEADROUTER_WEBHOOK_URLS")
        for url in self.urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"webhook URL {url!r} must start with http:// or https://")
        if secret is None:
            secrets = _split(env.get("LEADROUTER_WEBHOOK_SECRET"))
        else:
            secrets = [secret] if isinstance(secret, str) else list(secret)
        if not secrets:
            raise PluginDisabled("no signing secret: set LEADROUTER_WEBHOOK_SECRET "
                                 "(e.g. whsec_ + base64 of 32 random bytes)")
        for s in secrets:
            signing_key(s)  # a malformed whsec_ secret fails at start-up, not per event
        self.secrets = secrets
        wanted = events if events is not None else _split(env.get("LEADROUTER_WEBHOOK_EVENTS"))
        self.events = frozenset(wanted)
        self.timeout = timeout if timeout is not None else float(
            env.get("LEADROUTER_WEBHOOK_TIMEOUT") or 5.0)
        self.clock = clock
        self._clients = LoopClients()
        self._done: OrderedDict[tuple[str, str], None] = OrderedDict()

    def _client(self) -> httpx.AsyncClient:
        return self._clients.get(timeout=self.timeout,
                                 user_agent=f"leadrouter-webhook/{__version__}")

    def body(self, event: Event) -> bytes:
        data = {"lead_id": event.lead_id, **{k: _iso(v) for k, v in event.data.items()}}
        return _encoder.encode({"type": event.type, "timestamp": event.at.isoformat(),
                                "data": data})

    def headers(self, event: Event, body: bytes) -> dict[str, str]:
        stamp = int(self.clock())
        return {"content-type": "application/json", "webhook-id": event.id,
                "webhook-timestamp": str(stamp),
                "webhook-signature": " ".join(sign(s, event.id, stamp, body)
                                              for s in self.secrets)}

    @hookimpl
    async def on_event(self, event: Event) -> None:
        if self.events and event.type not in self.events:
            return
        body = self.body(event)
        headers = self.headers(event, body)
        client = self._client()
        failures = []
        for url in self.urls:
            key = (event.id, url)
            if key in self._done:
                continue
            try:
                response = await client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                failures.append(f"{url}: {type(exc).__name__}: {exc}")
                continue
            if not 200 <= response.status_code < 300:
                failures.append(f"{url}: HTTP {response.status_code}")
                continue
            if len(self.urls) > 1:
                self._done[key] = None
                if len(self._done) > _DONE_MAX:
                    self._done.popitem(last=False)
        if failures:
            raise WebhookError("; ".join(failures))
