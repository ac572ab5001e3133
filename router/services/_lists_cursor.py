"""Opaque, HMAC-signed cursors for the list APIs (router/services/lists.py).

A cursor is ``base64url(msgpack [kind, digest of the filters, position]) . base64url(mac)``:
``mac`` = the first 12 bytes of HMAC-SHA256 under the deployment's key (``lx:secret``, set
once at random), so a cursor cannot be forged or edited, and one made for other filters
(``digest``) or another list (``kind``) is refused like a garbled one: BadCursor → 400.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

import msgspec

from router.services.lists_model import BadCursor

__all__ = ["digest", "open_cursor", "seal"]

_MAC = 12


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def digest(*parts: Any) -> bytes:
    """What a cursor is bound to (the list's filters), 8 bytes."""
    return hashlib.sha256(msgspec.msgpack.encode(parts)).digest()[:8]


def seal(key: bytes, kind: str, bound: bytes, position: list[Any]) -> str:
    payload = msgspec.msgpack.encode([kind, bound, position])
    mac = hmac.new(key, payload, hashlib.sha256).digest()[:_MAC]
    return f"{_b64(payload)}.{_b64(mac)}"


def open_cursor(key: bytes, token: str, kind: str, bound: bytes) -> list[Any]:
    """The position sealed in ``token``; BadCursor if it is not one of ours for this list."""
    fix = " — start again without `cursor`, or pass the `next_cursor` of the page before as is"
    try:
        head, _, tail = token.partition(".")
        payload, mac = _unb64(head), _unb64(tail)
    except (binascii.Error, ValueError):
        raise BadCursor("the cursor is not valid base64url" + fix) from None
    good = hmac.new(key, payload, hashlib.sha256).digest()[:_MAC]
    if not hmac.compare_digest(mac, good):
        raise BadCursor("the cursor was not issued by this deployment" + fix)
    try:
        got_kind, got_bound, position = msgspec.msgpack.decode(payload)
    except (msgspec.DecodeError, ValueError, TypeError):
        raise BadCursor("the cursor is garbled" + fix) from None
    if got_kind != kind or got_bound != bound or not isinstance(position, list):
        raise BadCursor("the cursor was made for another list or other filters" + fix)
    return position
