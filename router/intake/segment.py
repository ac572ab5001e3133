"""Segment messages → leads and engagement events.

``POST /v1/sources/segment`` takes one message or ``{"batch": [...]}`` (the HTTP tracking API
shape), from a Segment webhook destination signed with the shared secret (``X-Signature``).

* ``identify``: the traits become a lead (``email``, ``firstName``, ``lastName``, ``name``,
  ``title``, ``phone``, ``company`` as text or ``{name, industry, employee_count}``, ``address``,
  ``website``...). ``userId`` becomes ``external_id`` (one lead per user), ``messageId`` the
  idempotency key (a redelivery is answered with the first decision).
* ``track``: an engagement event ``{email, event, properties, timestamp, messageId}``, the shape
  ``POST /v1/events`` takes.
* ``page``/``screen``/``group``/``alias``: acknowledged and skipped.
"""

from __future__ import annotations

from typing import Any, Final

from leadrouter_sdk import Lead

from router.intake.config import SourceConfig
from router.intake.items import Item, fingerprint_of
from router.intake.mapping import IntakeError, Limits, build_lead, clean_text

__all__ = ["SEGMENT_TRAITS", "segment_items"]

SEGMENT_TRAITS: Final = {
    "email": "email", "firstname": "first_name", "first_name": "first_name",
    "lastname": "last_name", "last_name": "last_name", "name": "full_name",
    "title": "title", "phone": "phone", "website": "domain", "industry": "industry",
    "employees": "employees", "description": "description",
    "company.name": "company", "company.industry": "industry",
    "company.employee_count": "employees", "company.employees": "employees",
    "company.website": "domain", "company.domain": "domain",
    "address.city": "city", "address.state": "state", "address.country": "country",
    "address.postal_code": "postal_code", "address.postalcode": "postal_code",
    "address.street": "attributes.street",
    "context.campaign.name": "utm_campaign", "context.campaign.source": "utm_source",
    "context.campaign.medium": "utm_medium", "context.campaign.term": "utm_term",
    "context.campaign.content": "utm_content",
    "createdat": "ignore", "id": "ignore", "avatar": "ignore", "birthday": "ignore",
    "age": "ignore", "gender": "ignore", "username": "ignore", "address.region": "state",
}
MAX_BATCH: Final = 500
_SKIP: Final = ("page", "screen", "group", "alias")


def _flatten(prefix: str, value: Any, out: list[tuple[str, Any]], depth: int = 0) -> None:
    if isinstance(value, dict) and depth < 3:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out, depth + 1)
    else:
        out.append((prefix, value))


def _identify(source: SourceConfig, msg: dict[str, Any], limits: Limits) -> Lead:
    traits = msg.get("traits")
    if traits is None and isinstance(msg.get("context"), dict):
        traits = msg["context"].get("traits")
    if not isinstance(traits, dict):
        raise IntakeError(422, "Invalid Segment message", "identify needs `traits`",
                          field="$.traits")
    pairs: list[tuple[str, Any]] = []
    _flatten("", traits, pairs)
    if isinstance(msg.get("context"), dict) and isinstance(msg["context"].get("campaign"), dict):
        _flatten("context.campaign", msg["context"]["campaign"], pairs)
    defaults: dict[str, Any] = {"source": source.source, **source.defaults}
    user = msg.get("userId")
    if isinstance(user, str | int) and str(user).strip():
        defaults["external_id"] = f"segment:{str(user).strip()}"[:256]
    lowered = [(k.lower() if k.lower() in SEGMENT_TRAITS else k, v) for k, v in pairs]
    return build_lead(lowered, mapping=source.fields, builtin=SEGMENT_TRAITS,
                      defaults=defaults, unmapped=source.unmapped, limits=limits,
                      what="Segment trait")



def _track(msg: dict[str, Any], limits: Limits) -> dict[str, Any]:
    event = msg.get("event")
    if not isinstance(event, str) or not event.strip():
        raise IntakeError(422, "Invalid Segment message", "track needs `event`",
                          field="$.event")
    props = msg.get("properties") if isinstance(msg.get("properties"), dict) else {}
    traits: dict[str, Any] = {}
    if isinstance(msg.get("context"), dict) and isinstance(msg["context"].get("traits"), dict):
        traits = msg["context"]["traits"]
    email = traits.get("email") or (props or {}).get("email")
    out: dict[str, Any] = {"event": clean_text(event, "event", limits).strip()[:100]}
    if isinstance(email, str) and email.strip():
        out["email"] = clean_text(email, "email", limits).strip()
    if isinstance(msg.get("userId"), str | int):
        out["external_id"] = f"segment:{msg['userId']}"[:256]
    if "email" not in out and "external_id" not in out:
        raise IntakeError(422, "Invalid Segment message", "track needs an email "
                          "(context.traits.email or properties.email) or a userId",
                          field="$.context.traits.email")
    if props:
        out["properties"] = props
    for key in ("timestamp", "messageId"):
        if isinstance(msg.get(key), str):
            out[key] = msg[key][:100]
    return out


def _message(source: SourceConfig, msg: Any, index: str, limits: Limits) -> Item:
    if not isinstance(msg, dict):
        return Item(f"message {index}", error=IntakeError(
            422, "Invalid Segment message", f"`{index}` is not an object", field=index))
    mid = msg.get("messageId")
    label = f"message {mid}" if isinstance(mid, str) else f"message {index}"
    key = mid.strip()[:255] if isinstance(mid, str) and mid.strip() else None
    kind = msg.get("type")
    try:
        if kind == "identify":
            return Item(label, lead=_identify(source, msg, limits), key=key,
                        body=fingerprint_of(msg))
        if kind == "track":
            if not source.events:
                return Item(label, skipped="track events are off for this source")
            return Item(label, event=_track(msg, limits), key=key)
    except IntakeError as exc:
        return Item(label, error=exc)
    if kind in _SKIP:
        return Item(label, skipped=f"{kind} messages are not leads")
    return Item(label, error=IntakeError(422, "Invalid Segment message",
                                         f"unknown message type {str(kind)[:40]!r}",
                                         field=f"{index}.type"))


def segment_items(source: SourceConfig, doc: Any, limits: Limits) -> list[Item]:
    if isinstance(doc, dict) and isinstance(doc.get("batch"), list):
        batch = doc["batch"]
        if len(batch) > MAX_BATCH:
            raise IntakeError(413, "Batch too large", f"{len(batch)} messages in one batch; "
                              f"the limit is {MAX_BATCH}", field="$.batch",
                              kind="batch-too-large")
        return [_message(source, m, f"$.batch[{i}]", limits) for i, m in enumerate(batch)]
    if isinstance(doc, dict):
        return [_message(source, doc, "$", limits)]
    raise IntakeError(422, "Invalid Segment payload", "expected a message object or "
                      "{\"batch\": [...]}", field="$")
