"""Request signatures of machine senders, checked in constant time. Pure: no I/O, no clock.

* **Standard Webhooks** (standardwebhooks.com): ``webhook-id``, ``webhook-timestamp`` (Unix
  seconds), ``webhook-signature`` (space-separated ``v1,<base64>`` values); signed content
  ``{id}.{timestamp}.{body}``, HMAC-SHA256 with the secret ``whsec_<base64 key>``.
* **HubSpot v3**: ``X-HubSpot-Signature-v3`` = base64(HMAC-SHA256(client secret,
  method + URI + body + timestamp)), ``X-HubSpot-Request-Timestamp`` in milliseconds.
* **Segment**: ``X-Signature`` = hex(HMAC-SHA1(shared secret, body)) (Segment webhook
  destinations; no timestamp, so replays are made harmless by ``messageId`` de-duplication).

Every check takes a list of secrets: during a rotation the old and the new one are both valid.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import Final

from router.intake.mapping import IntakeError

__all__ = ["hubspot_uri", "sign_standard", "split_secrets", "verify_hubspot_v3",
           "verify_segment", "verify_standard"]

_SPLIT: Final = re.compile(r"[\s,]+")
# HubSpot decodes these before signing (its "Validating requests" page); everything else stays.
_HS_DECODE: Final = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
                     "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}
_HS_PCT: Final = re.compile(r"%(?:3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)", re.IGNORECASE)


def split_secrets(value: str | None) -> list[str]:
    """Secrets from one environment variable: several may be listed (rotation)."""
    return [s for s in _SPLIT.split(value or "") if s]


def _unauthorized(detail: str, kind: str = "bad-signature") -> IntakeError:
    return IntakeError(401, "Unauthorized", detail, field=None, kind=kind)


def _check_time(ts: float, now: float, tolerance: int, header: str) -> None:
    if abs(now - ts) > tolerance:
        raise _unauthorized(f"`{header}` is {abs(now - ts):.0f}s away from the server's clock; "
                            f"the tolerance is {tolerance}s — the request is too old (replayed?) "
                            "or the sender's clock is wrong", kind="stale-timestamp")


def _whsec_key(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return secret.encode()  # a plain shared secret


def sign_standard(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value a Standard Webhooks sender would send."""
    mac = hmac.new(_whsec_key(secret), b"%s.%d.%s" % (msg_id.encode(), timestamp, body),
                   hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify_standard(secrets: Sequence[str], *, msg_id: str | None, timestamp: str | None,
                    signature: str | None, body: bytes, now: float, tolerance: int) -> str:
    """Check a Standard Webhooks request; returns the webhook id (for replay protection)."""
    if not msg_id or not timestamp or not signature:
        missing = [h for h, v in (("webhook-id", msg_id), ("webhook-timestamp", timestamp),
                                  ("webhook-signature", signature)) if not v]
        raise _unauthorized(f"missing {', '.join(missing)} header(s) (Standard Webhooks)",
                            kind="missing-signature")
    if len(msg_id) > 255 or not msg_id.isprintable():
        raise _unauthorized("`webhook-id` must be 1 to 255 printable characters")
    try:
        ts = int(timestamp.strip())
    except ValueError:
        raise _unauthorized("`webhook-timestamp` is not Unix seconds",
                            kind="stale-timestamp") from None
    _check_time(ts, now, tolerance, "webhook-timestamp")
    content = b"%s.%d.%s" % (msg_id.encode(), ts, body)
    given = [p.partition(",")[2].encode() for p in signature.split(" ")[:16]
             if p.startswith("v1,")]
    ok = False
    for secret in secrets:
        expected = base64.b64encode(
            hmac.new(_whsec_key(secret), content, hashlib.sha256).digest())
        for sig in given:
            ok |= hmac.compare_digest(expected, sig)
    if not ok:
        raise _unauthorized("`webhook-signature` does not match the body (Standard Webhooks)")
    return msg_id


def hubspot_uri(url: str) -> str:
    """The URI as HubSpot signs it: some percent-escapes decoded."""
    return _HS_PCT.sub(lambda m: _HS_DECODE[m.group(0).upper()], url)


def verify_hubspot_v3(secrets: Sequence[str], *, method: str, uri: str, body: bytes,
                      timestamp: str | None, signature: str | None, now: float,
                      tolerance: int) -> str:
    """Check ``X-HubSpot-Signature-v3``; returns the signature (the replay id)."""
    if not timestamp or not signature:
        raise _unauthorized("missing X-HubSpot-Signature-v3 / X-HubSpot-Request-Timestamp",
                            kind="missing-signature")
    try:
        ts_ms = int(timestamp.strip())
    except ValueError:
        raise _unauthorized("`X-HubSpot-Request-Timestamp` is not milliseconds",
                            kind="stale-timestamp") from None
    _check_time(ts_ms / 1000, now, tolerance, "X-HubSpot-Request-Timestamp")
    content = method.upper().encode() + hubspot_uri(uri).encode() + body + \
        timestamp.strip().encode()
    given = signature.strip().encode()
    ok = False
    for secret in secrets:
        expected = base64.b64encode(hmac.new(secret.encode(), content, hashlib.sha256).digest())
        ok |= hmac.compare_digest(expected, given)
    if not ok:
        raise _unauthorized("`X-HubSpot-Signature-v3` does not match (check the client "
                            "secret and that the public URL setting matches HubSpot's)")
    return given.decode()


def verify_segment(secrets: Sequence[str], *, body: bytes, signature: str | None) -> str:
    """Check Segment's ``X-Signature`` (hex HMAC-SHA1 of the body); returns it."""
    if not signature:
        raise _unauthorized("missing X-Signature header (Segment shared secret)",
                            kind="missing-signature")
    given = signature.strip().lower().encode()
    ok = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest().encode()
        ok |= hmac.compare_digest(expected, given)
    if not ok:
        raise _unauthorized("`X-Signature` does not match the body (Segment shared secret)")
    return given.decode()
