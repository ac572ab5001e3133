"""Field mapping shared by every adapter: sender field names and values → a ``Lead``.

Each adapter flattens what its sender sends into ``{field name: text or value}`` and hands it
here with the mapping of its form or source (``rules/intake.yaml``). This module:

* cleans hostile text (control characters, over-long values) and says which field was bad;
* applies the configured mapping (``00N5e00000ABCDE`` → ``attributes.product``), value tables
  and transforms, then the adapter's built-in names (Web-to-Lead, HubSpot, Segment);
* keeps unmapped fields as attributes, drops them, or refuses them (``unmapped``);
* converts with the SDK's lenient ``lead_from_mapping`` and reports a bad value under the name
  the *sender* used, so the person fixing the form sees their own field name.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec
from leadrouter_sdk import Lead, lead_from_mapping

from router.intake.config import LEAD_FIELDS, FieldMap

__all__ = ["IntakeError", "LeadDraft", "Limits", "build_lead", "clean_text"]

_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e"
                             r"\u2066-\u2069\ufeff\ud800-\udfff]")
_ATTR_BAD: Final = re.compile(r"[^A-Za-z0-9_.-]")
_PATH: Final = re.compile(r" - at `\$\.?([^`]*)`$")
_YES: Final = {"yes": True, "y": True, "true": True, "on": True, "1": True, "checked": True,
               "no": False, "n": False, "false": False, "off": False, "0": False}


class IntakeError(Exception):
    """A client mistake in an intake payload: becomes a 4xx problem naming ``field``."""

    def __init__(self, status: int, title: str, detail: str, *, field: str | None = None,
                 kind: str = "validation", headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.field = field
        self.kind = kind
        self.headers = dict(headers or {})


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """Per request: how many fields and how long each value may be (characters)."""

    max_fields: int = 200
    max_value_chars: int = 4000


def clean_text(value: str, field: str, limits: Limits) -> str:
    """Drop control/bidi-override characters, normalise to NFC, bound the length."""
    if len(value) > limits.max_value_chars * 4:  # before any work on a huge value
        raise IntakeError(422, "Field too long", f"`{field}` is {len(value)} characters long; "
                          f"the limit is {limits.max_value_chars}", field=field,
                          kind="field-too-long")
    text = _CONTROL.sub("", value)
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    if len(text) > limits.max_value_chars:
        raise IntakeError(422, "Field too long", f"`{field}` is {len(text)} characters long; "
                          f"the limit is {limits.max_value_chars}", field=field,
                          kind="field-too-long")
    return text


def _attr_name(name: str) -> str | None:
    key = _ATTR_BAD.sub("_", name)[:64]
    if not key or key.strip("_") == "":
        return None
    return key if (key[0].isalpha() or key[0] == "_") else f"_{key}"[:64]


def _transform(value: Any, fm: FieldMap) -> Any:
    if fm.table is not None and isinstance(value, str | int | float | bool):
        key = str(value).strip().lower()
        if key in fm.table:
            value = fm.table[key]
    for t in fm.transforms:
        if not isinstance(value, str):
            break
        if t == "lower":
            value = value.lower()
        elif t == "upper":
            value = value.upper()
        elif t == "title":
            value = value.title()
        elif t == "digits":
            value = "".join(c for c in value if c.isdigit())
        elif t == "first_line":
            value = value.strip().splitlines()[0] if value.strip() else ""
        elif t == "yes_no":
            value = _YES.get(value.strip().lower(), value)
    return value


class LeadDraft:
    """Fields collected for one lead, remembering which sender field each came from."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.attributes: dict[str, Any] = {}
        self.origin: dict[str, str] = {}  # lead path → sender field

    def set(self, target: str, value: Any, origin: str, *, overwrite: bool = True) -> None:
        if value is None or value == "":
            return
        if target.startswith("attributes."):
            name = target[len("attributes."):]
            if overwrite or name not in self.attributes:
                self.attributes[name] = value
                self.origin[f"attributes.{name}"] = origin
            return
        if target == "full_name":
            if isinstance(value, str):
                first, _, last = value.strip().partition(" ")
                self.set("first_name", first, origin, overwrite=overwrite)
                self.set("last_name", last, origin, overwrite=overwrite)
            return
        if overwrite or target not in self.values:
            self.values[target] = value
            self.origin[target] = origin


def build_lead(fields: Iterable[tuple[str, Any]], *, mapping: Mapping[str, FieldMap],
               builtin: Mapping[str, str], defaults: Mapping[str, Any], unmapped: str,
               limits: Limits, what: str = "field", ignore: Iterable[str] = ()) -> Lead:
    """Map ``(name, value)`` pairs to a ``Lead`` (see the module docstring).

    ``builtin`` maps the sender's well-known names to lead fields (configured ``mapping``
    wins); lead field names map to themselves. Strings are cleaned and bounded. Raises
    :class:`IntakeError` (422) naming the sender's field for any invalid value.
    """
    draft = LeadDraft()
    skip = set(ignore)
    count = 0
    for raw_name, raw_value in fields:
        count += 1
        if count > limits.max_fields:
            raise IntakeError(413, "Too many fields", f"more than {limits.max_fields} "
                              f"{what}s in one lead — send only the fields you use",
                              field=raw_name, kind="too-many-fields")
        name = clean_text(raw_name, "(field name)", limits).strip() if isinstance(
            raw_name, str) else str(raw_name)
        if not name or name in skip:
            continue
        value = _clean_value(raw_value, name, limits)
        _place(draft, name, value, mapping=mapping, builtin=builtin, unmapped=unmapped)
    for target, value in defaults.items():
        draft.set(target, value, "(default)", overwrite=False)
    for fm in mapping.values():  # configured defaults for fields the sender left out
        if fm.default is not None and fm.target not in draft.origin:
            draft.set(fm.target, fm.default, fm.source, overwrite=False)
    return _convert(draft, what)


def _clean_value(value: Any, name: str, limits: Limits) -> Any:
    """A sender's value, cleaned and bounded: text as :func:`clean_text`, repeated fields
    joined with "; ", anything else that is not a number or a boolean as its JSON text."""
    if isinstance(value, str):
        return clean_text(value, name, limits).strip()
    if isinstance(value, list):  # repeated form fields, multi-selects
        parts = [clean_text(v, name, limits).strip() if isinstance(v, str) else str(v)
                 for v in value if v is not None]
        joined = "; ".join(p for p in parts if p)
        if len(joined) > limits.max_value_chars:
            raise IntakeError(422, "Field too long", f"`{name}` is too long", field=name,
                              kind="field-too-long")
        return joined
    if value is not None and not isinstance(value, int | float | bool):
        return clean_text(msgspec.json.encode(value).decode(), name, limits)
    return value


def _place(draft: LeadDraft, name: str, value: Any, *, mapping: Mapping[str, FieldMap],
           builtin: Mapping[str, str], unmapped: str) -> None:
    """Put one sender field where it goes: the configured mapping first, then the adapter's
    built-in names and the lead's own field names, else the ``unmapped`` policy."""
    fm = mapping.get(name)
    if fm is not None:
        if fm.target == "ignore":
            return
        if value in (None, "") and fm.default is not None:
            value = fm.default
        draft.set(fm.target, _transform(value, fm), name)
        return
    target = builtin.get(name) or builtin.get(name.lower())
    if target is None and name in LEAD_FIELDS:
        target = name
    if target is not None:
        if target != "ignore":
            draft.set(target, value, name, overwrite=False)
        return
    if unmapped == "ignore":
        return
    if unmapped == "reject":
        raise IntakeError(422, "Unknown field", f"`{name}` is not a field this intake "
                          "accepts — map it in rules/intake.yaml or remove it",
                          field=name, kind="unknown-field")
    key = _attr_name(name)
    if key is not None:
        draft.set(f"attributes.{key}", value, name, overwrite=False)


def _convert(draft: LeadDraft, what: str) -> Lead:
    """The ``Lead`` of ``draft``; a bad value is reported under the sender's field name."""
    data = dict(draft.values)
    if draft.attributes:
        data["attributes"] = draft.attributes
    try:
        return lead_from_mapping(data)
    except msgspec.ValidationError as exc:
        text = str(exc)
        m = _PATH.search(text)
        path = m.group(1) if m else ""
        message = _PATH.sub("", text)
        origin = draft.origin.get(path)
        if origin is None and path.startswith("attributes"):
            origin = next((o for p, o in draft.origin.items() if p.startswith("attributes.")),
                          None) if "." not in path else None
        field = origin or path or None
        where = f"`{origin}` (lead field {path})" if origin and origin != path else \
            f"`{path or what}`"
        raise IntakeError(422, "Invalid lead", f"{where}: {message}", field=field,
                          kind="validation") from None
