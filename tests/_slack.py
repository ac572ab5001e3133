"""A local Slack Web API for the Slack plugin's tests: real HTTP on loopback (tests/_crm.py's
FakeApi), implementing ``chat.postMessage`` as documented
(https://api.slack.com/methods/chat.postMessage):

* ``POST /api/chat.postMessage``, ``Authorization: Bearer <bot token>`` (absent: ``not_authed``,
  unknown: ``invalid_auth``; a token without ``chat:write``: ``missing_scope`` with ``needed``
  and ``provided``), a JSON body (``Content-Type: application/json``);
* ``channel`` required, a known conversation id (a channel ``C...`` the bot is in, or a user id
  ``U...``: a DM), else ``channel_not_found`` / ``not_in_channel``; ``text`` or ``blocks``
  required (``no_text``);
* ``blocks``: at most 50, each of a known type with the documented limits (header plain_text ≤
  150 chars, section text ≤ 3000, ≤ 10 fields, actions ≤ 25 elements; a button's plain_text ≤ 75,
  ``url`` ≤ 3000, ``value`` ≤ 2000, ``action_id`` ≤ 255 and unique, ``style`` primary/danger),
  else ``invalid_blocks``;
* errors are HTTP 200 ``{"ok": false, "error": ...}``; rate limits are HTTP 429 with
  ``Retry-After`` and ``{"ok": false, "error": "ratelimited"}`` (``api.fail_next``);
* success: ``{"ok": true, "channel": ..., "ts": "<epoch>.<seq>", "message": {...}}``.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from _crm import Answer, FakeApi, Recorded

_BLOCK_TYPES = {"header", "section", "context", "actions", "divider", "image", "rich_text"}
_TOP_FIELDS = {"channel", "text", "blocks", "attachments", "unfurl_links", "unfurl_media",
               "mrkdwn", "thread_ts", "reply_broadcast", "username", "icon_url", "icon_emoji",
               "metadata", "parse", "link_names", "as_user"}


def _ok_text(obj: Any, kind: str | None, limit: int) -> bool:
    return (isinstance(obj, dict) and obj.get("type") in ({kind} if kind else
                                                          {"plain_text", "mrkdwn"})
            and isinstance(obj.get("text"), str) and 0 < len(obj["text"]) <= limit)


def _button_ok(b: Any, ids: set[str]) -> bool:
    if not isinstance(b, dict) or b.get("type") != "button":
        return False
    if set(b) - {"type", "text", "action_id", "url", "value", "style", "confirm",
                 "accessibility_label"}:
        return False
    aid = b.get("action_id")
    if not isinstance(aid, str) or not 0 < len(aid) <= 255 or aid in ids:
        return False
    ids.add(aid)
    return (_ok_text(b.get("text"), "plain_text", 75)
            and len(str(b.get("url", ""))) <= 3000 and len(str(b.get("value", ""))) <= 2000
            and b.get("style", "primary") in ("primary", "danger"))


def blocks_ok(blocks: Any) -> bool:
    """True if ``blocks`` follow Block Kit's documented shapes and limits (the subset used)."""
    if not isinstance(blocks, list) or not 0 < len(blocks) <= 50:
        return False
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in _BLOCK_TYPES:
            return False
        if kind == "header" and not _ok_text(block.get("text"), "plain_text", 150):
            return False
        if kind == "section":
            fields = block.get("fields", [])
            if "text" not in block and not fields:
                return False
            if "text" in block and not _ok_text(block["text"], None, 3000):
                return False
            if len(fields) > 10 or not all(_ok_text(f, None, 2000) for f in fields):
                return False
        if kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 0 < len(elements) <= 10 or not all(
                    _ok_text(e, None, 3000) for e in elements):
                return False
        if kind == "actions":
            elements, ids = block.get("elements"), set[str]()
            if not isinstance(elements, list) or not 0 < len(elements) <= 25 or not all(
                    _button_ok(b, ids) for b in elements):
                return False
    return True


class Slack:
    """The Slack Web API's chat.postMessage, in memory: ``messages`` holds what was posted."""

    def __init__(self, token: str, *, users: set[str] = frozenset(),  # type: ignore[assignment]
                 channels: set[str] = frozenset(),  # type: ignore[assignment]
                 outside: set[str] = frozenset(),  # type: ignore[assignment]
                 scoped: bool = True) -> None:
        self.token, self.users, self.channels = token, set(users), set(channels)
        self.outside = set(outside)  # channels that exist but the bot is not in
        self.scoped = scoped
        self.messages: list[dict[str, Any]] = []
        self.api = FakeApi(self.handle)
        self._seq = itertools.count(1)

    @property
    def url(self) -> str:
        return f"{self.api.url}/api"

    def handle(self, r: Recorded) -> Answer:
        if r.method != "POST" or r.path != "/api/chat.postMessage":
            return 404, {}, {"ok": False, "error": "unknown_method"}
        auth = r.headers.get("authorization", "")
        if not auth:
            return 200, {}, {"ok": False, "error": "not_authed"}
        if auth != f"Bearer {self.token}":
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        if not self.scoped:
            return 200, {}, {"ok": False, "error": "missing_scope", "needed": "chat:write",
                             "provided": "channels:read"}
        if not r.headers.get("content-type", "").startswith("application/json"):
            return 200, {}, {"ok": False, "error": "invalid_arguments"}
        body = r.json()
        if not isinstance(body, dict) or set(body) - _TOP_FIELDS:
            return 200, {}, {"ok": False, "error": "invalid_arguments"}
        channel = body.get("channel")
        if not isinstance(channel, str) or not channel:
            return 200, {}, {"ok": False, "error": "channel_not_found"}
        if channel in self.outside:
            return 200, {}, {"ok": False, "error": "not_in_channel"}
        if channel not in self.users | self.channels:
            return 200, {}, {"ok": False, "error": "channel_not_found"}
        if not body.get("text") and not body.get("blocks"):
            return 200, {}, {"ok": False, "error": "no_text"}
        if "blocks" in body and not blocks_ok(body["blocks"]):
            return 200, {}, {"ok": False, "error": "invalid_blocks",
                             "response_metadata": {"messages": ["[ERROR] invalid block"]}}
        ts = f"{int(time.time())}.{next(self._seq):06d}"
        conversation = f"D{channel[1:]}" if channel.startswith("U") else channel
        self.messages.append({**body, "ts": ts, "received": time.monotonic()})
        return 200, {}, {"ok": True, "channel": conversation, "ts": ts,
                         "message": {"type": "message", "text": body.get("text", ""),
                                     "ts": ts, "bot_id": "B0LEADRTR"}}

    def rate_limit(self, n: int = 1, retry_after: int = 1) -> None:
        """The next ``n`` calls answer 429 ``ratelimited`` with ``Retry-After``."""
        self.api.fail_next(n, 429, {"Retry-After": str(retry_after)},
                           {"ok": False, "error": "ratelimited"})
