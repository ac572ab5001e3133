"""A generic JSON source: any JSON object (or ``{"leads": [...]}`` / a JSON array of them),
mapped to leads with the source's ``fields`` (dotted paths such as ``contact.email``)."""

from __future__ import annotations

from typing import Any, Final

from router.intake.config import SourceConfig
from router.intake.items import Item, fingerprint_of
from router.intake.mapping import IntakeError, Limits, build_lead
from router.intake.outcomes import json_outcome

__all__ = ["json_items"]

MAX_ITEMS: Final = 100


def _flatten(prefix: str, value: Any, out: list[tuple[str, Any]], depth: int = 0) -> None:
    # Nested objects become dotted names ("contact.email"); lists stay values.
    if isinstance(value, dict) and depth < 4 and prefix != "attributes":
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out, depth + 1)
    elif isinstance(value, dict):  # "attributes": {...} keeps its own names
        out.extend((f"attributes.{k}", v) for k, v in value.items())
    else:
        out.append((prefix, value))


def _one(source: SourceConfig, obj: Any, label: str, limits: Limits) -> Item:
    if not isinstance(obj, dict):
        return Item(label, error=IntakeError(422, "Invalid lead", f"`{label}` is not a JSON "
                                             "object", field=label))
    outcome = json_outcome(source, obj, label)  # the source's `outcomes:` (outcomes.py)
    if outcome is not None:
        return outcome
    pairs: list[tuple[str, Any]] = []
    _flatten("", obj, pairs)
    builtin = {name: name for name, _ in pairs if name.startswith("attributes.")}
    try:
        lead = build_lead(pairs, mapping=source.fields, builtin=builtin,
                          defaults={"source": source.source, **source.defaults},
                          unmapped=source.unmapped, limits=limits, what="field")
    except IntakeError as exc:
        if exc.field and not exc.field.startswith("$"):
            exc.field = f"{label}.{exc.field}"
        return Item(label, error=exc)
    return Item(label, lead=lead, body=fingerprint_of(obj))


def json_items(source: SourceConfig, doc: Any, limits: Limits) -> list[Item]:
    if isinstance(doc, dict) and isinstance(doc.get("leads"), list) and len(doc) == 1:
        doc = doc["leads"]
    if isinstance(doc, list):
        if len(doc) > MAX_ITEMS:
            raise IntakeError(413, "Batch too large", f"{len(doc)} leads in one request; the "
                              f"limit is {MAX_ITEMS}", field="$", kind="batch-too-large")
        return [_one(source, obj, f"$[{i}]", limits) for i, obj in enumerate(doc)]
    return [_one(source, doc, "$", limits)]
