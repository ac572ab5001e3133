"""What a machine-source adapter turns one request into: items, each a lead, an engagement
event, something skipped on purpose, or a per-item error (the other items still count)."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
from leadrouter_sdk import Lead

from router.intake.mapping import IntakeError

__all__ = ["Item", "fingerprint_of"]

_encode = msgspec.json.Encoder(order="sorted").encode


def fingerprint_of(value: Any) -> bytes:
    """Canonical bytes of a decoded value (idempotency fingerprints of one batch item)."""
    try:
        return _encode(value)
    except (TypeError, ValueError, OverflowError):
        return hashlib.sha256(repr(value).encode()).hexdigest().encode()


class Item:
    __slots__ = ("body", "error", "event", "key", "label", "lead", "skipped")

    def __init__(self, label: str, *, lead: Lead | None = None, key: str | None = None,
                 body: bytes = b"", event: dict[str, Any] | None = None,
                 skipped: str | None = None, error: IntakeError | None = None) -> None:
        self.label = label
        self.lead = lead
        self.key = key
        self.body = body
        self.event = event
        self.skipped = skipped
        self.error = error
