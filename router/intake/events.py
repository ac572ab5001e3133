"""Activity events as they arrive: :func:`event_from_payload` reads one event in any accepted
shape (Segment ``track`` / ``identify``, or the plain ``POST /v1/events`` body) into an
:class:`EventIn`, and :func:`traits_to_fields` turns Segment-style ``identify`` traits into lead
fields. Shape checks only: what an event does to a person is router/services/engagement.py's.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec
from leadrouter_sdk import lead_from_mapping

__all__ = ["EventIn", "event_from_payload", "traits_to_fields"]


class EventIn(msgspec.Struct, frozen=True, kw_only=True):
    """One event, whatever shape it arrived in (router/api/events.py translates)."""

    kind: Literal["track", "identify"] = "track"
    event: str | None = None
    email: str | None = None
    lead_id: str | None = None
    external_id: str | None = None
    source: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    timestamp: dt.datetime | None = None
    message_id: str | None = None
    traits: dict[str, Any] = {}  # identify: lead fields (see traits_to_fields)

    @property
    def identity(self) -> str:
        """Events with the same identity keep their order inside a batch."""
        return (self.email or self.lead_id or self.external_id or self.user_id
                or self.anonymous_id or "")


# --- traits ------------------------------------------------------------------------------------

_TRAITS: dict[str, str] = {
    "firstname": "first_name", "lastname": "last_name", "title": "title", "jobtitle": "title",
    "phone": "phone", "company": "company", "companyname": "company", "website": "domain",
    "domain": "domain", "employees": "employees", "employeecount": "employees",
    "numberofemployees": "employees", "annualrevenue": "annual_revenue",
    "revenue": "annual_revenue", "industry": "industry", "country": "country",
    "state": "state", "region": "state", "city": "city", "postalcode": "postal_code",
    "zip": "postal_code", "budget": "budget", "authority": "authority", "need": "need",
    "timelinedays": "timeline_days", "description": "description",
}
_NESTED = {"company": {"name": "company", "employeecount": "employees",
                       "employees": "employees", "industry": "industry", "website": "domain",
                       "domain": "domain"},
           "address": {"country": "country", "state": "state", "region": "state",
                       "city": "city", "postalcode": "postal_code"}}


def _flat(key: str) -> str:
    return key.replace("_", "").replace("-", "").replace(" ", "").lower()


def traits_to_fields(traits: Mapping[str, Any]) -> dict[str, Any]:
    """Segment-style traits (``firstName``, ``company: {name, employee_count}``, ``address``...)
    as normalized lead fields; the email (the identity) and unknown traits are left out.
    Raises ``msgspec.ValidationError`` (``$.field``) for values a lead would refuse."""
    out: dict[str, Any] = {}
    for key, value in traits.items():
        k = _flat(str(key))
        if k in _NESTED and isinstance(value, Mapping):
            for sub, v in value.items():
                field = _NESTED[k].get(_flat(str(sub)))
                if field and v is not None:
                    out.setdefault(field, v)
        elif k == "name" and isinstance(value, str) and value.strip():
            first, _, last = value.strip().partition(" ")
            out.setdefault("first_name", first)
            if last:
                out.setdefault("last_name", last.strip())
        elif k in _TRAITS and value is not None and not isinstance(value, Mapping | list):
            out[_TRAITS[k]] = value
    if not out:
        return {}
    lead = lead_from_mapping(out)
    return {k: v for k, v in msgspec.to_builtins(lead).items()
            if k in out and v is not None}


# --- payload shapes ------------------------------------------------------------------------------

_MAX_EVENT = 128
_MAX_ID = 200


def _bad(path: str, message: str) -> msgspec.ValidationError:
    return msgspec.ValidationError(f"{message} - at `{path}`")


# The top-level keys an event is read from, by lower-cased name, and the other keys Segment
# sends (ignored). Any other key is ignored too, unless it looks like a misspelt key the event
# is read from that is missing (`timestmp`, `emial`): then the event is refused, saying so,
# rather than recorded without its time or its person.
_GROUPS = (("type",), ("event",), ("email",), ("lead_id", "leadId"), ("external_id", "externalId"),
           ("source",), ("userId", "user_id"), ("anonymousId", "anonymous_id"),
           ("timestamp", "originalTimestamp"), ("messageId", "message_id"), ("properties",),
           ("traits",), ("context",))
_NAMES = frozenset(name for names in _GROUPS for name in names)
_READ = {name.lower(): names[0] for names in _GROUPS for name in names}  # → its group
_SEGMENT_KEYS = frozenset(k.lower() for k in (
    "sentAt", "receivedAt", "channel", "integrations", "version", "writeKey", "projectId",
    "_metadata", "category", "name", "groupId", "previousId", "requestId", "options"))


def _misspelt(doc: Mapping[str, Any], path: str) -> None:
    """Refuse an unknown key close to a key the event is read from and does not have."""
    given: set[str] | None = None  # the groups of keys the event has
    for key in doc:
        name = str(key)
        if name in _NAMES:
            continue
        low = name.lower()
        if low in _SEGMENT_KEYS:
            continue
        close = [low] if low in _READ else difflib.get_close_matches(low, _READ, n=1,
                                                                     cutoff=0.8)
        if not close:
            continue
        if given is None:
            given = {_READ[k.lower()] for k in map(str, doc) if k in _NAMES}
        if _READ[close[0]] not in given:
            raise _bad(path, f"Object contains unknown field `{key}`")


def _text(doc: Mapping[str, Any], keys: Sequence[str], path: str, *, limit: int = _MAX_ID,
          numbers: bool = False) -> str | None:
    for key in keys:
        value = doc.get(key)
        if value is None:
            continue
        if numbers and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise _bad(f"{path}.{key}", "Expected a string")
        value = value.strip()
        if not value:
            continue
        if len(value) > limit or not value.isprintable():
            raise _bad(f"{path}.{key}", f"Expected at most {limit} printable characters")
        return value
    return None


def _email(value: str, path: str) -> str:
    try:
        email = lead_from_mapping({"email": value}).email
    except msgspec.ValidationError:
        raise _bad(path, "Expected an email address") from None
    if not email:
        raise _bad(path, "Expected an email address")
    return email


def _timestamp(doc: Mapping[str, Any], path: str) -> dt.datetime | None:
    for key in ("timestamp", "originalTimestamp"):
        value = doc.get(key)
        if value is None:
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000 if abs(value) > 1e11 else value  # epoch ms or s
            try:
                return dt.datetime.fromtimestamp(seconds, dt.UTC)
            except (OverflowError, OSError, ValueError):
                raise _bad(f"{path}.{key}", "Expected a time") from None
        if not isinstance(value, str):
            raise _bad(f"{path}.{key}", "Expected an ISO 8601 time or epoch milliseconds")
        try:
            when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise _bad(f"{path}.{key}", "Expected an ISO 8601 time such as "
                       "2024-05-01T12:00:00Z") from None
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return None


def event_from_payload(doc: Any, path: str = "$") -> EventIn:
    """One event in any of the accepted shapes (see docs): Segment ``track`` / ``identify``, or
    the plain ``{email | lead_id | external_id, event, timestamp, properties, messageId}``.
    Raises ``msgspec.ValidationError`` naming the field (``$.event``)."""
    if not isinstance(doc, Mapping):
        raise _bad(path, "Expected an event object")
    _misspelt(doc, path)
    kind = doc.get("type", "track")
    if kind not in ("track", "identify"):
        raise _bad(f"{path}.type", f"Expected `track` or `identify`, got {str(kind)[:40]!r}")
    context = doc.get("context")
    if context is not None and not isinstance(context, Mapping):
        raise _bad(f"{path}.context", "Expected an object")
    props = doc.get("properties")
    if props is not None and not isinstance(props, Mapping):
        raise _bad(f"{path}.properties", "Expected an object")
    traits = doc.get("traits")
    if traits is None and kind == "identify" and isinstance(context, Mapping):
        traits = context.get("traits")
    if traits is not None and not isinstance(traits, Mapping):
        raise _bad(f"{path}.traits", "Expected an object")
    ctx_traits = context.get("traits") if isinstance(context, Mapping) else None
    user = _text(doc, ("userId", "user_id"), path, numbers=True)
    anon = _text(doc, ("anonymousId", "anonymous_id"), path, numbers=True)
    email_raw = _text(doc, ("email",), path, limit=320)
    email_path = f"{path}.email"
    for where, source in (("traits", traits), ("context.traits", ctx_traits),
                          ("properties", props)):
        if email_raw is None and isinstance(source, Mapping):
            email_raw = _text(source, ("email",), f"{path}.{where}", limit=320)
            email_path = f"{path}.{where}.email"
    if email_raw is None and user and "@" in user:
        email_raw, email_path = user, f"{path}.userId"
    email = _email(email_raw, email_path) if email_raw else None
    event = None
    fields: dict[str, Any] = {}
    if kind == "track":
        event = _text(doc, ("event",), path, limit=_MAX_EVENT)
        if event is None:
            raise _bad(f"{path}.event", "Expected the event name (1 to 128 characters)")
    elif traits:
        try:
            fields = traits_to_fields(traits)
        except msgspec.ValidationError as exc:
            text = str(exc).replace("- at `$", f"- at `{path}.traits", 1)
            raise msgspec.ValidationError(text) from None
    lead_id = _text(doc, ("lead_id", "leadId"), path, limit=64)
    external_id = _text(doc, ("external_id", "externalId"), path, limit=256, numbers=True)
    if not (email or lead_id or external_id or user or anon):
        raise _bad(path, "Expected who did it: email, lead_id, external_id, userId or "
                   "anonymousId")
    return EventIn(kind=kind, event=event, email=email, lead_id=lead_id,
                   external_id=external_id, source=_text(doc, ("source",), path, limit=100),
                   user_id=user, anonymous_id=anon, timestamp=_timestamp(doc, path),
                   message_id=_text(doc, ("messageId", "message_id"), path), traits=fields)
