"""Slack interactivity: verifying a request from Slack and reading which button was pressed.

With ``LEADROUTER_SLACK_SIGNING_SECRET`` set, the plugin sends *interactive* Accept and
Contacted buttons (their ``value`` is the signed action link; Reject stays a URL button: it
needs a reason chosen on the link's page). Slack then POSTs the click to the Slack app's
**Interactivity Request URL**; the plugin SDK cannot mount an HTTP route in the service, so
that endpoint is the Slack app's piece: :func:`verify` on the raw request, :func:`clicked` on
the body, then a POST of the signed link (the action is performed with the link's own rules:
expiry, single use, current owner). :func:`wsgi_app` is that endpoint, ready to run under any
WSGI server (``gunicorn 'leadrouter_slack.interactions:from_env()'``). See
docs/notifications.md.

Slack's request signature (https://api.slack.com/authentication/verifying-requests-from-slack):
``X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret, "v0:" + X-Slack-Request-Timestamp
+ ":" + raw body)>``; a timestamp more than 5 minutes from now is refused (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any, Final

import httpx
import msgspec

__all__ = ["MAX_SKEW", "BadRequest", "Click", "clicked", "from_env", "sign", "verify",
           "wsgi_app"]

log = logging.getLogger("leadrouter.plugins.slack")

MAX_SKEW: Final = 300  # seconds


class BadRequest(ValueError):
    """Not a genuine, fresh Slack request (answer 401) or not a button click (answer 400)."""


class Click(msgspec.Struct, frozen=True, kw_only=True):
    action: str  # accept | contacted | reject
    url: str  # the signed action link to POST
    slack_user: str | None  # who clicked (Slack user id)
    response_url: str | None = None  # where to post a reply to the clicker


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Slack-Signature`` value of ``body`` sent at ``timestamp``."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes, *,
           now: float) -> None:
    """Raise :class:`BadRequest` unless ``signature`` is Slack's over ``body`` and
    ``timestamp`` is within 5 minutes of ``now`` (Unix seconds)."""
    if not secret:
        raise BadRequest("no signing secret configured: set LEADROUTER_SLACK_SIGNING_SECRET")
    if not timestamp or not signature:
        raise BadRequest("missing X-Slack-Request-Timestamp or X-Slack-Signature")
    try:
        when = int(timestamp)
    except ValueError:
        raise BadRequest("X-Slack-Request-Timestamp is not a Unix time") from None
    if abs(now - when) > MAX_SKEW:
        raise BadRequest("request timestamp is more than 5 minutes away: a replay, or the "
                         "server clock is wrong")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        raise BadRequest("signature mismatch: check LEADROUTER_SLACK_SIGNING_SECRET (Basic "
                         "Information → App Credentials → Signing Secret)")


def clicked(body: bytes) -> Click:
    """The button of a ``block_actions`` payload (``payload=<json>``, form-encoded)."""
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    try:
        payload = json.loads(form["payload"][0])
    except (KeyError, IndexError, ValueError):
        raise BadRequest("body is not an interactivity payload (payload=<json>)") from None
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        raise BadRequest("not a block_actions payload")
    actions = payload.get("actions")
    action = actions[0] if isinstance(actions, list) and actions else None
    action_id = action.get("action_id") if isinstance(action, dict) else None
    url = action.get("value") if isinstance(action, dict) else None
    if not isinstance(action_id, str) or not action_id.startswith("leadrouter_") or not (
            isinstance(url, str) and url.startswith(("https://", "http://"))):
        raise BadRequest("not a leadrouter button")
    user = payload.get("user")
    slack_user = user.get("id") if isinstance(user, dict) else None
    reply = payload.get("response_url")
    return Click(action=action_id.removeprefix("leadrouter_"), url=url,
                 slack_user=slack_user if isinstance(slack_user, str) else None,
                 # the payload is signed by Slack (verify first): its response_url is Slack's
                 response_url=reply if isinstance(reply, str) and reply.startswith(
                     ("https://", "http://")) else None)


_DONE: Final = {"accept": "Accepted: the lead is yours.", "contacted": "Marked as contacted."}

Start = Callable[[str, list[tuple[str, str]]], Any]


def _answer(start: Start, status: str, text: str = "") -> Iterable[bytes]:
    body = text.encode()
    start(status, [("content-type", "text/plain; charset=utf-8"),
                   ("content-length", str(len(body)))])
    return [body]


def wsgi_app(secret: str, *, now: Callable[[], float] = time.time,
             timeout: float = 2.5) -> Callable[[dict[str, Any], Start], Iterable[bytes]]:
    """The Interactivity Request URL endpoint: verify, perform the link's action (POST the
    signed link), tell the clicker the outcome through Slack's ``response_url``."""
    def app(environ: dict[str, Any], start: Start) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return _answer(start, "405 Method Not Allowed")
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size) if size else b""
        try:
            verify(secret, environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP"),
                   environ.get("HTTP_X_SLACK_SIGNATURE"), body, now=now())
        except BadRequest as exc:
            log.warning("slack interaction refused: %s", exc)
            return _answer(start, "401 Unauthorized", str(exc))
        try:
            click = clicked(body)
        except BadRequest as exc:
            return _answer(start, "400 Bad Request", str(exc))
        try:
            done = httpx.post(click.url, data={}, timeout=timeout).status_code == 200
        except httpx.HTTPError:
            done = False
        text = _DONE.get(click.action, "Done.") if done else (
            f"Could not {click.action} this lead (already used, expired, or no longer yours): "
            f"open {click.url} for details.")
        log.info("slack interaction: %s by %s: %s", click.action, click.slack_user,
                 "done" if done else "refused")
        if click.response_url:
            try:
                httpx.post(click.response_url, json={"response_type": "ephemeral",
                                                     "replace_original": False, "text": text},
                           timeout=timeout)
            except httpx.HTTPError:
                log.warning("slack interaction: could not reply through response_url")
        return _answer(start, "200 OK")

    return app


def from_env() -> Callable[[dict[str, Any], Start], Iterable[bytes]]:
    """:func:`wsgi_app` with ``LEADROUTER_SLACK_SIGNING_SECRET``."""
    secret = os.environ.get("LEADROUTER_SLACK_SIGNING_SECRET", "")
    if not secret:
        raise RuntimeError("set LEADROUTER_SLACK_SIGNING_SECRET (the Slack app's Signing Secret)")
    return wsgi_app(secret)
