"""What a machine-source adapter turns one request into: items, each a lead, an engagement
event, something skipped on purpose, or a per-item error (the other items still count)."""

from __future__ import annotations

import hashlib
from dataclasses import KW_ONLY, dataclass
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


@dataclass(slots=True, eq=False)  # eq=False: compared and hashed by identity, as before
class Item:
    """One batch item, named by ``label`` (where it stood in the request): a ``lead`` routed
    with idempotency ``key`` (None: the delivery's id and the item's index) and fingerprint
    ``body``, an engagement ``event``, ``skipped`` (saying why) or an ``error``."""

    label: str
    _: KW_ONLY
    lead: Lead | None = None
    key: str | None = None
    body: bytes = b""
    event: dict[str, Any] | None = None
    outcome: dict[str, Any] | None = None  # an outcome (router/intake/outcomes.py)
    skipped: str | None = None
    error: IntakeError | None = None
