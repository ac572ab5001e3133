"""The one ``Lead`` type shared by the engine, the HTTP API and plugins.

Flat on purpose: rule authors write ``employees >= 1000`` or ``country == "US"``, not paths into
nested objects, and the engine reads fields without walking a tree. Free-form data goes into
``attributes`` and is reachable from rules as ``attributes.<name>``.

Every ``Lead`` is normalized when it is created (decoded, converted or constructed): strings are
trimmed (empty ones become None), the email is checked and lower-cased, the website is reduced to
its host name, country and state become ISO 3166 codes and the phone number E.164. Normalizing an
already normalized lead changes nothing.

Decode untrusted input with :func:`decode_lead` (JSON) or :func:`lead_from_mapping` (an already
parsed mapping, e.g. a form): they also accept amounts such as ``"$50,000"`` or ``"1.5M"`` and
report every problem as a ``msgspec.ValidationError`` ending in ``- at `$.field```.
"""

from __future__ import annotations

from collections.abc import Mapping
from math import isfinite
from typing import Annotated, Any, Final

import msgspec

from leadrouter_sdk._normalize import (
    MAX_ATTRIBUTES,
    AttributeValue,
    FieldError,
    normalize_attributes,
    normalize_country,
    normalize_domain,
    normalize_email,
    normalize_phone,
    normalize_state,
    not_finite,
    parse_amount,
)

__all__ = ["AttributeValue", "Lead", "decode_lead", "lead_from_mapping"]

Str = Annotated[str, msgspec.Meta(max_length=256)]
LongStr = Annotated[str, msgspec.Meta(max_length=4000)]
NonNegInt = Annotated[int, msgspec.Meta(ge=0)]
NonNegFloat = Annotated[float, msgspec.Meta(ge=0)]


def _doc(text: str, **constraints: Any) -> Any:
    return msgspec.Meta(description=text, **constraints)


Email = Annotated[Str | None, _doc("Contact address; trimmed and lower-cased.")]
Domain = Annotated[Str | None, _doc("Company host name; a pasted URL is reduced to it.")]
Phone = Annotated[Str | None, _doc("E.164 when it parses (`+14155550100`), else as sent.")]
Country = Annotated[Str | None, _doc("ISO 3166-1 alpha-2 code; names are converted.")]
State = Annotated[Str | None, _doc("ISO 3166-2 suffix (`CA` for US-CA), else as sent.")]
Employees = Annotated[NonNegInt, msgspec.Meta(le=100_000_000)]
TimelineDays = Annotated[NonNegInt, msgspec.Meta(le=36_500)]
Attributes = Annotated[
    dict[Str, AttributeValue],
    _doc(
        "Free-form values reachable from rules as `attributes.<name>`; names match"
        " `^[A-Za-z_][A-Za-z0-9_.-]{0,63}$`.",
        max_length=MAX_ATTRIBUTES,
    ),
]


class Lead(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """A person who showed interest, as sent by a form or a marketing tool."""

    # contact
    email: Email = None
    first_name: Str | None = None
    last_name: Str | None = None
    title: Str | None = None
    phone: Phone = None
    # company
    company: Str | None = None
    domain: Domain = None
    employees: Employees | None = None
    annual_revenue: NonNegFloat | None = None
    industry: Str | None = None
    # location: ISO 3166-1 alpha-2 country, ISO 3166-2 subdivision suffix (``CA`` for US-CA)
    country: Country = None
    state: State = None
    city: Str | None = None
    postal_code: Str | None = None
    # BANT
    budget: NonNegFloat | None = None
    authority: Str | None = None
    need: LongStr | None = None
    timeline_days: TimelineDays | None = None
    # source / campaign / UTM
    source: Str | None = None
    campaign: Str | None = None
    utm_source: Str | None = None
    utm_medium: Str | None = None
    utm_campaign: Str | None = None
    utm_term: Str | None = None
    utm_content: Str | None = None
    # consent
    consent: bool | None = None
    # identity at the sender, used for de-duplication
    external_id: Str | None = None
    description: LongStr | None = None
    attributes: Attributes = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        values = _astuple(self)  # one C call instead of a getattr per field
        for i in _TRIMMED:
            value = values[i]
            if value is not None:
                trimmed = value.strip()
                if trimmed is not value or not trimmed:
                    setattr(self, _FIELDS[i], trimmed or None)
        for i in _SQUASHED:
            value = values[i]
            if value is not None:
                squashed = " ".join(value.split())
                if squashed != value:
                    setattr(self, _FIELDS[i], squashed or None)
        if self.email is not None:
            self.email = normalize_email(self.email)
        if self.domain is not None:
            self.domain = normalize_domain(self.domain)
        if self.country is not None:
            self.country = normalize_country(self.country)
        if self.state is not None:
            self.country, self.state = normalize_state(self.state, self.country)
        if self.phone is not None:
            self.phone = normalize_phone(self.phone, self.country)
        if self.budget is not None and not isfinite(self.budget):
            raise not_finite("budget")
        if self.annual_revenue is not None and not isfinite(self.annual_revenue):
            raise not_finite("annual_revenue")
        if self.attributes:
            self.attributes = normalize_attributes(self.attributes)


_SPECIAL: Final = frozenset({"email", "domain", "country", "state", "phone"})
_SQUASHED_NAMES: Final = ("first_name", "last_name", "title", "company")


def _accepts_str(t: msgspec.inspect.Type) -> bool:
    if isinstance(t, msgspec.inspect.Metadata):
        return _accepts_str(t.type)
    if isinstance(t, msgspec.inspect.UnionType):
        return any(_accepts_str(u) for u in t.types)
    return isinstance(t, msgspec.inspect.StrType)


def _text_fields() -> tuple[str, ...]:
    info = msgspec.inspect.type_info(Lead)
    assert isinstance(info, msgspec.inspect.StructType)
    return tuple(f.name for f in info.fields if _accepts_str(f.type))


_TEXT_FIELDS: Final = _text_fields()
_FIELDS: Final = Lead.__struct_fields__
_astuple: Final = msgspec.structs.astuple
# indices into _FIELDS of the plain text fields: only trimmed, or also whitespace-collapsed
_TRIMMED: Final = tuple(
    _FIELDS.index(n) for n in _TEXT_FIELDS if n not in _SPECIAL and n not in _SQUASHED_NAMES
)
_SQUASHED: Final = tuple(_FIELDS.index(n) for n in _SQUASHED_NAMES)

# what the lenient decoders pre-clean, by field
_INT_FIELDS: Final = ("employees", "timeline_days")
_AMOUNT_FIELDS: Final = ("employees", "timeline_days", "budget", "annual_revenue")
_TEXT, _AMOUNT, _FLAG = 0, 1, 2
_PRECLEAN: Final = {
    **dict.fromkeys(_TEXT_FIELDS, _TEXT),
    **dict.fromkeys(_AMOUNT_FIELDS, _AMOUNT),
    "consent": _FLAG,
}
_YES_NO: Final = {
    "yes": True, "y": True, "on": True, "checked": True,
    "no": False, "n": False, "off": False, "unchecked": False,
}

_lax_decoder: Final = msgspec.json.Decoder(Lead, strict=False)
_strict_decoder: Final = msgspec.json.Decoder(Lead)
# float_hook: 1e999 becomes inf and is reported against its field, not as "out of range"
_untyped_decoder: Final = msgspec.json.Decoder(float_hook=float)


def _located(exc: msgspec.ValidationError) -> msgspec.ValidationError:
    """Add the ``- at `$.field``` msgspec cannot know for errors raised in ``__post_init__``."""
    cause = exc.__cause__
    if isinstance(cause, FieldError) and str(exc) == str(cause):
        located = msgspec.ValidationError(f"{cause} - at `$.{cause.field}`")
        located.__cause__ = cause
        return located
    return exc


def _number_error(field: str) -> msgspec.ValidationError:
    kind = "a whole number such as 1200, 1,200 or 1.2k" if field in _INT_FIELDS else (
        "an amount such as 50000, 50,000, $50k or 1.5M"
    )
    return msgspec.ValidationError(f"Expected {kind} - at `$.{field}`")


def _preclean(data: dict[Any, Any]) -> dict[Any, Any]:
    """Lenient conversions msgspec does not do: ``"1,200"`` → 1200, ``94103`` → ``"94103"``..."""
    changes: dict[str, Any] = {}
    for field, value in data.items():
        kind = _PRECLEAN.get(field) if isinstance(field, str) else None
        if kind is None:
            continue
        if kind == _TEXT:
            if type(value) is int:  # postal codes, phone numbers, ids sent as JSON numbers
                changes[field] = str(value)
        elif not isinstance(value, str):
            continue
        elif kind == _FLAG:
            flag = _YES_NO.get(value.strip().lower())
            if flag is not None:
                changes[field] = flag
        elif (amount := parse_amount(value)) is not None:
            changes[field] = amount
        else:
            try:  # anything msgspec itself accepts ("1e3") is left to msgspec
                msgspec.convert(value, float, strict=False)
            except msgspec.ValidationError:
                raise _number_error(field) from None
    return {**data, **changes} if changes else data


def decode_lead(data: bytes | str, *, strict: bool = False) -> Lead:
    """Decode a JSON object into a normalized ``Lead``.

    With ``strict=False`` (the default) numbers may arrive as text, including ``"1,200"``,
    ``"$50,000"``, ``"50k"`` and ``"1.5M"``, and yes/no words are accepted for ``consent``.
    Raises ``msgspec.ValidationError`` (with the ``$.field`` path) for invalid input and
    ``msgspec.DecodeError`` for malformed JSON.
    """
    if strict:
        try:
            return _strict_decoder.decode(data)
        except msgspec.ValidationError as exc:
            raise _located(exc) from exc.__cause__
    try:
        return _lax_decoder.decode(data)  # fast path: input that needs no extra leniency
    except msgspec.ValidationError as exc:
        if isinstance(exc.__cause__, FieldError):
            raise _located(exc) from exc.__cause__
        first = exc
    raw = _untyped_decoder.decode(data)
    if not isinstance(raw, dict):
        raise first
    return _convert(_preclean(raw))


def lead_from_mapping(mapping: Mapping[str, Any]) -> Lead:
    """Convert an already parsed mapping (JSON object, form fields...) into a ``Lead``.

    As lenient as :func:`decode_lead`; raises ``msgspec.ValidationError`` with the field path.
    """
    if isinstance(mapping, Mapping):
        mapping = _preclean(mapping if isinstance(mapping, dict) else dict(mapping))
    return _convert(mapping)


def _convert(data: Any) -> Lead:
    try:
        return msgspec.convert(data, Lead, strict=False)
    except msgspec.ValidationError as exc:
        raise _located(exc) from exc.__cause__
