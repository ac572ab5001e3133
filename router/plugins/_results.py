"""Validation of what plugin hooks return: an enricher's fields (merged into the lead like
input), a scorer's contributions, a route override. A result that fails here is skipped and
recorded as ``invalid``, like a call that raised (router/plugins/_isolation.py)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import msgspec
from leadrouter_sdk import Contribution, Lead, RouteOverride, lead_from_mapping

from router.engine.ruleset import Ruleset

__all__ = ["check_contributions", "check_override", "merge"]

_LEAD_FIELDS = frozenset(Lead.__struct_fields__)


def _finite(x: float) -> bool:
    return x - x == 0  # False for NaN and ±inf (msgspec checked the type is a number)


def check_contributions(value: Any) -> tuple[tuple[Contribution, ...], str | None]:
    """A scorer's result (one contribution or an iterable of them) as a tuple with float points,
    or what is wrong with it."""
    items = (value,) if isinstance(value, Contribution) else value
    try:
        items = tuple(items)
    except TypeError:
        return (), f"returned {type(value).__name__}, not contributions"
    for c in items:
        if type(c) is not Contribution or not _finite(c.points):
            return (), f"returned {c!r}, not a Contribution with finite points"
    # Points are floats in a decision, as the rules' are: a scorer's `points=7` becomes 7.0.
    return tuple(c if type(c.points) is float
                 else msgspec.structs.replace(c, points=float(c.points)) for c in items), None


def check_override(value: Any, ruleset: Ruleset) -> str | None:
    if not isinstance(value, RouteOverride):
        return f"returned {type(value).__name__}, not a RouteOverride"
    if value.pool and value.pool not in ruleset.pools:
        return f"overrode the route to unknown pool {value.pool!r}"
    if value.owner and value.owner not in ruleset.reps:
        return f"overrode the route to unknown rep {value.owner!r}"
    return None


def merge(lead: Lead, updates: Mapping[str, Any]) -> tuple[Lead, list[str]]:
    """Fill the lead's empty fields (and new attributes) from ``updates``, validated and
    normalised like input. Only the filled fields are converted (a whole-lead round trip costs
    ~10x more), on a copy: the incoming lead is never changed."""
    changes: dict[str, Any] = {}
    filled: list[str] = []
    for key, value in updates.items():
        if key == "attributes":
            if not isinstance(value, Mapping):
                raise TypeError("attributes must be a mapping")
            attrs = dict(lead.attributes)
            for name, v in value.items():
                if name not in attrs and v is not None:
                    attrs[name] = v
                    filled.append(f"attributes.{name}")
            if len(attrs) != len(lead.attributes):
                changes["attributes"] = attrs
        elif key not in _LEAD_FIELDS:
            raise ValueError(f"unknown lead field {key!r} (put free-form values under "
                             "attributes)")
        elif value is not None and getattr(lead, key) is None:
            changes[key] = value
            filled.append(key)
    if not changes:
        return lead, filled
    partial_input = dict(changes)
    if lead.country and ("state" in changes or "phone" in changes):
        partial_input["country"] = lead.country  # both are normalised against the country
    try:
        partial = msgspec.convert(partial_input, Lead, strict=False)
    except msgspec.ValidationError:
        partial = lead_from_mapping(partial_input)  # "1,200", "$5M", "yes"...
    merged = copy.copy(lead)
    for key in changes:
        setattr(merged, key, getattr(partial, key))
    if "state" in changes and lead.country is None:
        merged.country = partial.country
    return merged, filled
