"""leadrouter plugin: tell the rep in Slack when a lead is assigned, reassigned, rerouted to
them, near its SLA deadline (``sla.warning``) or breached.

On each such event (``on_event``, from the durable outbox, at least once) it posts one Block
Kit message with ``chat.postMessage`` (bot token, scope ``chat:write``):

* to the rep's Slack user id (``LEADROUTER_SLACK_USERS``: ``alice=U0123,...``; the message
  arrives in the app's direct messages with them), else to the pool's channel
  (``LEADROUTER_SLACK_CHANNELS``: ``na-smb=C0123,...``), else to ``LEADROUTER_SLACK_CHANNEL``;
  none of the three → dead-lettered at once, naming the map to fix;
* with the lead's summary, why it was routed there, the due time (rendered by Slack in the
  reader's time zone) and the signed accept / contacted / reject links as URL buttons, or as
  interactive buttons when ``LEADROUTER_SLACK_SIGNING_SECRET`` is set (see
  :mod:`leadrouter_slack.interactions`); no links configured → no buttons.

429 (``Retry-After``), 5xx, ``ok: false`` with a transient error and network errors are retried
through the outbox's backoff (a ``Retry-After`` up to ``LEADROUTER_SLACK_INLINE_WAIT`` seconds
is waited out within the delivery; a longer one makes deliveries fail fast until it passed);
configuration errors (``channel_not_found``, ``not_in_channel``, ``invalid_auth``,
``missing_scope``...) are permanent: logged with what to fix and dead-lettered at once.
Logs name lead ids, reps and channel ids only. See docs/notifications.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import httpx
from leadrouter_sdk import Event, PluginDisabled, hookimpl
from leadrouter_sdk.http import LoopClients
from leadrouter_sdk.notify import DEFAULT_EVENTS, Notice, notice
from leadrouter_sdk.writeback import PermanentError, RetryableError, parse_map, retry_after

from leadrouter_slack._blocks import blocks, fallback_text

__all__ = ["PermanentError", "RetryableError", "SlackPlugin"]
__version__ = "0.1.0"

log = logging.getLogger("leadrouter.plugins.slack")

# ok:false errors worth retrying (Slack's documented transient errors); any other is permanent
_TRANSIENT: Final = frozenset({"ratelimited", "internal_error", "fatal_error",
                               "service_unavailable", "request_timeout", "team_added_to_org"})
_AUTH: Final = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired",
                          "account_inactive", "no_permission", "ekm_access_denied"})


def _fix(error: str, target: str, needed: str | None) -> str:
    """What to change for a permanent ``ok: false`` error."""
    if error in _AUTH:
        return ("check LEADROUTER_SLACK_TOKEN: a bot token (xoxb-...) of an app installed in "
                "the workspace")
    if error == "missing_scope":
        return f"add the {needed or 'chat:write'} scope to the Slack app and reinstall it"
    if error in ("channel_not_found", "user_not_found"):
        return (f"{target} does not exist or the app cannot see it: fix it in "
                "LEADROUTER_SLACK_USERS / LEADROUTER_SLACK_CHANNELS (ids like U0123 / C0123, not "
                "names)")
    if error == "not_in_channel":
        return f"invite the app to {target} (/invite @app), or add the chat:write.public scope"
    if error == "is_archived":
        return f"{target} is archived: map the pool to another channel"
    return "see https://api.slack.com/methods/chat.postMessage#errors"


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


class SlackPlugin:
    """The plugin. Arguments default to the ``LEADROUTER_SLACK_*`` environment variables."""

    name = "slack"
    # Deliveries may overlap: the per-loop httpx client is safe for concurrent requests and a
    # Retry-After is kept in one deadline (``_not_before``, only ever pushed later), so once
    # Slack asks to wait every delivery fails fast until then, however many were in flight.
    # Four, not more: chat.postMessage allows about one message a second per channel (short
    # bursts tolerated); more in flight would mostly earn 429s.
    sink_concurrency = 4

    def __init__(self, token: str | None = None, *, users: Mapping[str, str] | None = None,
                 channels: Mapping[str, str] | None = None, channel: str | None = None,
                 signing_secret: str | None = None, events: Iterable[str] | None = None,
                 base_url: str | None = None, timeout: float | None = None,
                 inline_wait: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        env = os.environ
        self.token = token or env.get("LEADROUTER_SLACK_TOKEN", "")
        if not self.token:
            raise PluginDisabled("not configured: set LEADROUTER_SLACK_TOKEN (the app's bot "
                                 "token, xoxb-..., scope chat:write)")
        self.users = dict(users if users is not None else parse_map(
            env.get("LEADROUTER_SLACK_USERS")))
        self.channels = dict(channels if channels is not None else parse_map(
            env.get("LEADROUTER_SLACK_CHANNELS")))
        self.channel = channel if channel is not None else env.get("LEADROUTER_SLACK_CHANNEL")
        if not (self.users or self.channels or self.channel):
            raise PluginDisabled("nowhere to post: set LEADROUTER_SLACK_USERS (rep=U...), "
                                 "LEADROUTER_SLACK_CHANNELS (pool=C...) or "
                                 "LEADROUTER_SLACK_CHANNEL")
        self.signing_secret = (signing_secret if signing_secret is not None
                               else env.get("LEADROUTER_SLACK_SIGNING_SECRET", ""))
        self.events = frozenset(events if events is not None else (
            _split(env.get("LEADROUTER_SLACK_EVENTS")) or DEFAULT_EVENTS))
        self.base_url = (base_url or env.get("LEADROUTER_SLACK_BASE_URL")
                         or "https://slack.com/api").rstrip("/")
        self.timeout = timeout if timeout is not None else float(
            env.get("LEADROUTER_SLACK_TIMEOUT") or 5.0)
        self.inline_wait = inline_wait if inline_wait is not None else float(
            env.get("LEADROUTER_SLACK_INLINE_WAIT") or 1.0)
        self.clock = clock
        self._not_before = 0.0
        self._clients = LoopClients()

    def target(self, note: Notice) -> str:
        """The channel id to post to: the rep's user id, the pool's channel, the default."""
        if note.rep and note.rep in self.users:
            return self.users[note.rep]
        if note.pool and note.pool in self.channels:
            return self.channels[note.pool]
        if self.channel:
            return self.channel
        raise PermanentError(
            f"rep {note.rep!r} has no Slack user id and pool {note.pool!r} no channel: add "
            f"`{note.rep or '<rep>'}=U...` to LEADROUTER_SLACK_USERS or "
            f"`{note.pool or '<pool>'}=C...` to LEADROUTER_SLACK_CHANNELS")

    def message(self, note: Notice, channel: str) -> dict[str, Any]:
        """The chat.postMessage body."""
        return {"channel": channel, "text": fallback_text(note),
                "blocks": blocks(note, interactive=bool(self.signing_secret)),
                "unfurl_links": False, "unfurl_media": False}

    def _client(self) -> httpx.AsyncClient:
        return self._clients.get(timeout=self.timeout, user_agent="leadrouter-slack/0.1.0")

    async def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """One chat.postMessage; Slack's answer, or RetryableError / PermanentError."""
        what = f"chat.postMessage to {body['channel']}"
        try:
            response = await self._client().post(
                f"{self.base_url}/chat.postMessage", json=body,
                headers={"authorization": f"Bearer {self.token}"})
        except httpx.HTTPError as exc:
            raise RetryableError(f"{what}: {type(exc).__name__} (retried)") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(f"{what}: HTTP {response.status_code} (retried)",
                                 retry_after(response.headers.get("retry-after")))
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise RetryableError(f"{what}: HTTP {response.status_code}, not a Slack answer")
        if answer.get("ok") is True:
            return answer
        error = str(answer.get("error") or f"HTTP {response.status_code}")
        if error in _TRANSIENT:
            raise RetryableError(f"{what}: {error} (retried)",
                                 retry_after(response.headers.get("retry-after")))
        needed = answer.get("needed")
        fix = _fix(error, body["channel"], needed if isinstance(needed, str) else None)
        raise PermanentError(f"Slack refused {what}: {error}: {fix}")

    async def send(self, note: Notice) -> dict[str, Any]:
        """Post ``note``, waiting out a short Retry-After once; Slack's answer."""
        body = self.message(note, self.target(note))
        try:
            return await self.post(body)
        except RetryableError as exc:
            if exc.retry_after is None or exc.retry_after > self.inline_wait:
                raise
            await asyncio.sleep(exc.retry_after)
        return await self.post(body)

    def preview(self, event: Event) -> str:
        """The chat.postMessage body ``event`` would be posted as (``test-notify --show``)."""
        note = notice(event)
        return json.dumps(self.message(note, self.target(note)), indent=2, ensure_ascii=False)

    @hookimpl
    async def on_event(self, event: Event) -> None:
        if event.type not in self.events:
            return
        note = notice(event)
        if note.rep is None and note.pool is None:
            return  # a queued lead: nobody to tell
        wait = self._not_before - self.clock()
        if wait > 0:
            raise RetryableError(f"Slack asked to wait: retry in {wait:.1f} s")
        try:
            answer = await self.send(note)
        except PermanentError as exc:
            log.error("slack %s for lead %s (rep %s) rejected, it will be dead-lettered: %s",
                      event.type, event.lead_id, note.rep, exc)
            raise
        except RetryableError as exc:
            if exc.retry_after:
                self._not_before = max(self._not_before, self.clock() + exc.retry_after)
            log.warning("slack %s for lead %s (rep %s) will be retried: %s", event.type,
                        event.lead_id, note.rep, exc)
            raise
        log.info("slack %s for lead %s (rep %s) posted to %s (ts %s)", event.type,
                 event.lead_id, note.rep, answer.get("channel"), answer.get("ts"))
