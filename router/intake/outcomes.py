"""Source deliveries that are outcomes (a source's ``outcomes:``, router/intake/outcome_map.py)
→ items carrying the ``POST /v1/outcomes`` body (router/services/outcomes.py checks it).

* **HubSpot deal** (a workflow "Send a webhook" on a deal-stage change, CRM v3 object shape)::

    {"objectId": 9001, "portalId": 62515,
     "properties": {"dealstage": "closedwon", "amount": "12000", "deal_currency_code": "EUR",
                    "closed_lost_reason": null, "hs_lastmodifieddate": "2026-03-02T09:00:00Z",
                    "email": "jane@acme.example"},
     "associations": {"contacts": [501]}}

  The lead is the contact's (``external_id`` ``hubspot:<portal>:<contact>``, as the contact
  intake made it), else the ``email`` property. The stage is ``outcomes.stages[dealstage]``;
  a deal stage not mapped is skipped (204, saying so). The outcome id is
  ``hubspot:<portal>:<deal>:<dealstage>``: HubSpot's retries change nothing.
* **Generic JSON**: an object with the ``stage`` path of ``outcomes.fields``, each outcome field
  read from its path (``stages`` maps the values when given).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from router.intake.config import SourceConfig
from router.intake.items import Item
from router.intake.outcome_map import OutcomeMap

__all__ = ["deal_item", "is_deal", "json_outcome"]

_HUBSPOT = {"stage": "properties.dealstage", "amount": "properties.amount",
            "currency": "properties.deal_currency_code",
            "reason": "properties.closed_lost_reason", "at": "properties.hs_lastmodifieddate",
            "email": "properties.email"}


def _get(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list) or value == "":
        return None
    return str(value)


def _at(value: Any) -> str | None:
    """An ISO time as is; epoch milliseconds (HubSpot's own format) as ISO."""
    text = _text(value)
    if text is not None and text.isdigit():
        return dt.datetime.fromtimestamp(int(text) / 1000, dt.UTC).isoformat()
    return text


def _stage(spec: OutcomeMap, value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    return spec.stages.get(text.strip().lower(), text if not spec.stages else None)


def is_deal(source: SourceConfig, doc: dict[str, Any]) -> bool:
    props = doc.get("properties")
    return source.outcomes is not None and isinstance(props, dict) and "dealstage" in props


def _outcome(spec: OutcomeMap, doc: Any, paths: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, path in {**paths, **spec.fields}.items():
        value = _get(doc, path)
        if name == "stage":
            continue
        value = _at(value) if name == "at" else _text(value)
        if value is not None:
            out[name] = value
    return out


def deal_item(source: SourceConfig, doc: dict[str, Any]) -> Item:
    """One HubSpot deal → an outcome item (or skipped, saying why)."""
    spec = source.outcomes
    assert spec is not None
    deal, portal = doc.get("objectId", doc.get("id")), doc.get("portalId")
    raw = _get(doc, spec.fields.get("stage", _HUBSPOT["stage"]))
    label = f"deal {str(deal)[:40]}"
    stage = _stage(spec, raw)
    if stage is None:
        return Item(label, skipped=f"deal stage {str(raw)[:60]!r} is not mapped to a funnel "
                    "stage (sources.<id>.outcomes.stages)")
    out = _outcome(spec, doc, _HUBSPOT)
    out["stage"] = stage
    contacts = _get(doc, "associations.contacts") or doc.get("associatedContactIds")
    if isinstance(contacts, list) and contacts and "external_id" not in out:
        contact = contacts[0].get("id") if isinstance(contacts[0], dict) else contacts[0]
        out["external_id"] = (f"hubspot:{portal}:{contact}" if portal is not None
                              else f"hubspot:{contact}")
        out["source"] = source.source
        out.pop("email", None)
    out.setdefault("outcome_id", f"hubspot:{portal}:{deal}:{str(raw)[:40]}"[:128])
    return Item(label, outcome=out)


def json_outcome(source: SourceConfig, obj: Any, label: str) -> Item | None:
    """A generic JSON item as an outcome, or None when it is not one (no ``stage`` path)."""
    spec = source.outcomes
    if spec is None or "stage" not in spec.fields:
        return None
    raw = _get(obj, spec.fields["stage"])
    if raw is None:
        return None
    stage = _stage(spec, raw)
    if stage is None:
        return Item(label, skipped=f"stage {str(raw)[:60]!r} is not mapped to a funnel stage "
                    "(sources.<id>.outcomes.stages)")
    out = _outcome(spec, obj, {})
    out["stage"] = stage
    if "external_id" in out:
        out.setdefault("source", source.source)
    return Item(label, outcome=out)
