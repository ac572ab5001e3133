"""The fact a lead becomes in durable-rules: durable-rules' limits, the value slots, the
property-name hash and how a value is written into a fact (see :mod:`leadrouter_durable._translate`
for the layout).
"""

from __future__ import annotations

import datetime
import math
from json.encoder import encode_basestring_ascii as _json_text
from typing import Any

from leadrouter_durable import _ir as ir
from router.engine.functions import ANY, BOOL, NUM, STR, TIME

# durable-rules' own limits (rete.h / state.h / events.c of durable-rules 2.0.28).
MAX_SLOTS = 31  # MAX_SEQUENCE_EXPRESSIONS - 1
MAX_FACT_PROPERTIES = 255
ALWAYS = "k"  # every fact carries "k": 1; an always-true rule tests it
FIXED_PROPERTIES = ("sid", "id", ALWAYS)  # in every fact
RESERVED = (*FIXED_PROPERTIES, "$s")  # no value may hash like these

ALL_SLOTS = ("n", "b", "s", "t", "u", "x")
KIND_SLOTS: dict[str, tuple[str, ...]] = {
    NUM: ("n",), BOOL: ("b",), STR: ("s",), TIME: ("t", "u"), ANY: ALL_SLOTS,
}
ATTRIBUTE_SLOTS = ("n", "b", "s")  # attribute values are text, numbers, booleans or null
_EPOCH_AWARE = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_EPOCH_NAIVE = datetime.datetime(1970, 1, 1)


class Unsupported(Exception):
    """A rule uses something the durable-rules backend cannot run faithfully."""


def fnv1_32(text: str) -> int:
    """durable-rules' property-name hash (FNV-1a, 32 bit): properties are matched by it alone."""
    h = 0x811C9DC5
    for byte in text.encode():
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


def encode(value: Any) -> tuple[str, str] | None:
    """(slot, JSON text) of a value as it goes into a fact; None for null."""
    cls = value.__class__
    if cls is str:
        return "s", _json_text(value)
    if cls is float:
        if math.isnan(value):
            return "x", "1"
        if _EXACT <= abs(value) < _INT64_END:
            # integral beyond 2**53: written as the integer it is, so that durable-rules
            # compares it exactly with integers (it converts an integer to a double otherwise)
            return "n", str(int(value))
        return "n", ir.render_number(value)
    if cls is int:
        return "n", str(value) if _INT64_MIN <= value <= _INT64_MAX else ir.render_number(value)
    if cls is bool:
        return "b", "1" if value else "0"
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            return "t", str((value - _EPOCH_AWARE) // _MICROSECOND)
        return "u", str((value.replace(tzinfo=None) - _EPOCH_NAIVE) // _MICROSECOND)
    if isinstance(value, bool | int | float | str):  # subclasses
        return encode(bool(value) if isinstance(value, bool) else
                      int(value) if isinstance(value, int) else
                      float(value) if isinstance(value, float) else str(value))
    raise TypeError(f"a {type(value).__name__} value cannot go into a durable-rules fact")


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_EXACT, _INT64_END = 2.0**53, 2.0**63
_MICROSECOND = datetime.timedelta(microseconds=1)
