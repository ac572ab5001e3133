"""Making signed action links: accept / contacted / reject URLs for one lead and one rep.

A link is ``{LEADROUTER_PUBLIC_URL}/a/<token>``; the token is ``<payload>.<mac>``, both
base64url without padding: the payload is the JSON array ``[lead, rep, action, expiry (unix
seconds), link id]``, the mac HMAC-SHA256 over ``"lr-link-v1." + payload`` with
``LEADROUTER_ACTION_SECRET``. Verifying compares in constant time against the current secret
and, until ``LEADROUTER_ACTION_SECRET_PREVIOUS_UNTIL``, the previous one (rotation). The token
*is* the credential: whoever holds it may do that one action for that rep, once, until it
expires.

This module needs no store: :class:`LinkSigner` is pure (the time is given) and
:class:`LinkMaker` joins it with the settings and the clock — enough for the outbox's links
and ``leadrouter plugins test-notify``. Single use (Redis) is router/services/action_links.py.

Link ids are derived from the outbox event (HMAC of the event id and the action): every
channel delivering one event (Slack, email...) renders the same three links, so the rep's
click in one spends it everywhere, and a redelivery of the event renders the same links.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import logging
import os
from collections.abc import Callable
from typing import Any, Literal

import msgspec
from leadrouter_sdk import Event

from router.settings import Settings, SettingsError

__all__ = [
    "ACTIONS",
    "LINK_EVENTS",
    "MIN_SECRET",
    "LinkAction",
    "LinkClaims",
    "LinkMaker",
    "LinkRefused",
    "LinkSigner",
    "signer_of",
]

log = logging.getLogger("leadrouter.links")

LinkAction = Literal["accept", "contacted", "reject", "any"]
ACTIONS: tuple[LinkAction, ...] = ("accept", "contacted", "reject")
# The events for a rep that carry links (lead.breached only while the rep still owns the lead).
LINK_EVENTS = frozenset({"lead.assigned", "lead.reassigned", "lead.rerouted", "lead.requalified",
                         "sla.warning", "lead.breached"})
_CONTEXT = b"lr-link-v1."
MIN_SECRET = 16


class LinkClaims(msgspec.Struct, frozen=True, array_like=True):
    """What a link says: ``rep`` may do ``action`` on ``lead`` until ``exp`` (unix s)."""

    lead: str
    rep: str
    action: LinkAction
    exp: int
    lid: str

    @property
    def expires_at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.exp, dt.UTC)


class LinkRefused(Exception):
    """A link that may not act: ``kind`` is ``forged`` (bad or unknown signature, or not a
    token), ``expired``, ``spent`` (used already), ``busy`` (a click is being handled) or
    ``disabled`` (no secret configured)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(LinkClaims).decode


class LinkSigner:
    """Signs and verifies tokens (pure: the time is given)."""

    def __init__(self, secret: str, *, previous: str | None = None,
                 previous_until: dt.datetime | None = None) -> None:
        self._key = secret.encode()
        self._previous = previous.encode() if previous and previous_until else None
        self.previous_until = previous_until

    def _mac(self, key: bytes, payload: str) -> bytes:
        return hmac.new(key, _CONTEXT + payload.encode(), hashlib.sha256).digest()

    def sign(self, claims: LinkClaims) -> str:
        payload = _b64(_encode(claims))
        return f"{payload}.{_b64(self._mac(self._key, payload))}"

    def derive(self, *parts: str) -> str:
        """A stable id from ``parts`` (an event id and an action): 16 bytes, base64url."""
        return _b64(hmac.new(self._key, "\x1f".join(parts).encode(), hashlib.sha256)
                    .digest()[:16])

    def verify(self, token: str, now: dt.datetime) -> LinkClaims:
        """The claims of a genuine, unexpired token; raises :class:`LinkRefused`."""
        payload, dot, mac_text = token.partition(".")
        try:
            if not dot or len(token) > 2048:
                raise ValueError
            mac = _unb64(mac_text)
            raw = _unb64(payload)
        except (ValueError, binascii.Error):
            raise LinkRefused("forged", "this is not an action link") from None
        keys = [self._key]
        if self._previous is not None and self.previous_until is not None \
                and now < self.previous_until:
            keys.append(self._previous)
        genuine = False
        for key in keys:  # compare with every key: the time taken says nothing
            genuine |= hmac.compare_digest(self._mac(key, payload), mac)
        if not genuine:
            raise LinkRefused("forged", "this link's signature is not valid")
        try:
            claims = _decode(raw)
        except msgspec.DecodeError:
            raise LinkRefused("forged", "this link's content is not valid") from None
        if now.timestamp() >= claims.exp:
            when = claims.expires_at.strftime("%Y-%m-%d %H:%M")
            raise LinkRefused("expired", f"this link expired at {when} UTC")
        return claims


def signer_of(settings: Settings) -> LinkSigner | None:
    """The signer of LEADROUTER_ACTION_SECRET (None: unset); raises SettingsError."""
    if not settings.action_secret:
        return None
    for name in ("action_secret", "action_secret_previous"):
        value = getattr(settings, name)
        if value is not None and len(value) < MIN_SECRET:
            raise SettingsError(f"LEADROUTER_{name.upper()} is too short — use at least "
                                f"{MIN_SECRET} random characters (e.g. `openssl rand -hex 32`)")
    until = None
    if settings.action_secret_previous:
        text = settings.action_secret_previous_until or ""
        try:
            until = dt.datetime.fromisoformat(text)
        except ValueError:
            raise SettingsError(
                "LEADROUTER_ACTION_SECRET_PREVIOUS_UNTIL must be an ISO-8601 time (e.g. "
                f"2026-01-31T00:00:00Z), not {text!r} — set until when the previous secret's "
                "links stay valid") from None
        if until.tzinfo is None:
            until = until.replace(tzinfo=dt.UTC)
    return LinkSigner(settings.action_secret, previous=settings.action_secret_previous,
                      previous_until=until)


class LinkMaker:
    """Making and checking links, no store needed: the outbox's links (:meth:`enrich`),
    ``leadrouter plugins test-notify``, and the check of a clicked token (:meth:`verify`)."""

    def __init__(self, *, settings: Settings, clock: Callable[[], dt.datetime]) -> None:
        self.signer = signer_of(settings)
        self.now = clock
        base = settings.public_url or f"http://{settings.host}:{settings.port}"
        self.base_url = base.rstrip("/")
        self.margin = dt.timedelta(seconds=settings.action_link_margin)
        self.lifetime = dt.timedelta(seconds=settings.action_link_lifetime)
        self.public = bool(settings.public_url)

    def startup_note(self) -> str | None:
        """One line for the start-up log when links are off or need LEADROUTER_PUBLIC_URL."""
        if self.signer is None:
            return ("action links are off: set LEADROUTER_ACTION_SECRET (and "
                    "LEADROUTER_PUBLIC_URL) to put accept/reject links in notifications")
        if not self.public:
            return (f"action links point at {self.base_url}: set LEADROUTER_PUBLIC_URL to the "
                    "address reps reach the service at")
        return None

    def expiry(self, due: dt.datetime | None) -> dt.datetime:
        """When a link for a lead due at ``due`` expires: the deadline plus the margin (never
        before now plus the margin), or now plus the lifetime without an SLA."""
        now = self.now()
        if due is None:
            return now + self.lifetime
        return max(due, now) + self.margin

    def links(self, lead_id: str, rep: str, due: dt.datetime | None,
              seed: str | None = None) -> dict[str, str]:
        """``{"accept": url, "contacted": url, "reject": url, "expires_at": iso}``; ``seed``
        (an outbox event id) makes the link ids stable, else they are random."""
        if self.signer is None:
            raise LinkRefused("disabled", "action links are not configured")
        expires = self.expiry(due)
        exp = int(expires.timestamp())
        out: dict[str, str] = {}
        for action in ACTIONS:
            lid = self.signer.derive(seed, lead_id, rep, action) if seed else \
                _b64(os.urandom(16))
            token = self.signer.sign(LinkClaims(lead_id, rep, action, exp, lid))
            out[action] = f"{self.base_url}/a/{token}"
        out["expires_at"] = dt.datetime.fromtimestamp(exp, dt.UTC).isoformat().replace(
            "+00:00", "Z")
        return out

    def enrich(self, event: Event) -> Event:
        """``event`` with ``data["links"]`` when it is for a rep who may act on the lead now
        (the delivery calls this before every sink; see router/plugins/delivery.py)."""
        if self.signer is None or event.type not in LINK_EVENTS:
            return event
        data = event.data
        owner = data.get("owner")
        if not isinstance(owner, str) or not owner or data.get("state") not in (
                None, "assigned", "accepted", "contacted"):
            return event
        if event.type == "lead.breached" and not _kept_owner(data):
            return event  # the breach moved the lead: links to the old owner would be stale
        due = data.get("due_at")
        links = self.links(event.lead_id, owner, due if isinstance(due, dt.datetime) else None,
                           seed=event.id)
        return msgspec.structs.replace(event, data={**data, "links": links})

    def verify(self, token: str) -> LinkClaims:
        if self.signer is None:
            raise LinkRefused("disabled", "action links are not configured on this service")
        return self.signer.verify(token, self.now())


def _kept_owner(data: dict[str, Any]) -> bool:
    entry = data.get("entry")
    detail = entry.get("data") if isinstance(entry, dict) else None
    action = detail.get("action") if isinstance(detail, dict) else None
    return isinstance(action, str) and action.split(":")[-1] == "notify"
