"""HubSpot payloads → leads.

Three shapes arrive at ``POST /v1/sources/hubspot`` (all signed with X-HubSpot-Signature-v3):

* **Forms v3 submission** (what a page posts to HubSpot's Forms API, or a workflow forwards):
  ``{"fields": [{"name": "email", "value": "..."}], "context": {"pageUri": ...},
  "submittedAt": "..."}`` — one lead.
* **Webhook events** (app webhooks): a JSON array of ``{"eventId", "portalId", "objectId",
  "subscriptionType": "contact.creation" | "contact.propertyChange", "propertyName",
  "propertyValue", ...}``. Events are grouped by contact; a contact becomes a lead when the
  delivery created it or changed one of the source's ``route_on`` properties (default: any),
  and it has an email. ``external_id`` is ``hubspot:<portal>:<contact>``, so a contact is routed
  once however many deliveries mention it.
* **A CRM contact object** (workflow "send a webhook", CRM v3 API shape):
  ``{"objectId"|"vid"|"id": ..., "properties": {"email": "..." | {"value": "..."}}}``.
"""

from __future__ import annotations

from typing import Any, Final

from router.intake.config import SourceConfig
from router.intake.items import Item, fingerprint_of
from router.intake.mapping import IntakeError, Limits, build_lead
from router.intake.outcomes import deal_item, is_deal

__all__ = ["HUBSPOT_PROPERTIES", "hubspot_items"]

# HubSpot contact property internal names → lead fields.
HUBSPOT_PROPERTIES: Final = {
    "email": "email", "firstname": "first_name", "lastname": "last_name",
    "jobtitle": "title", "phone": "phone", "mobilephone": "attributes.mobile",
    "company": "company", "website": "domain", "domain": "domain",
    "numemployees": "employees", "annualrevenue": "annual_revenue", "industry": "industry",
    "city": "city", "state": "state", "country": "country", "zip": "postal_code",
    "message": "description", "hs_analytics_source": "source",
    "utm_source": "utm_source", "utm_medium": "utm_medium", "utm_campaign": "utm_campaign",
    "utm_term": "utm_term", "utm_content": "utm_content",
    "lifecyclestage": "attributes.lifecyclestage", "hs_lead_status": "attributes.hs_lead_status",
    "hs_object_id": "ignore", "createdate": "ignore", "lastmodifieddate": "ignore",
    "hutk": "ignore", "hs_context": "ignore",
}
MAX_EVENTS: Final = 1000


def _lead(source: SourceConfig, pairs: list[tuple[str, Any]], limits: Limits,
          external_id: str | None = None) -> Any:
    defaults: dict[str, Any] = {"source": source.source, **source.defaults}
    if external_id:
        defaults["external_id"] = external_id
    return build_lead(pairs, mapping=source.fields, builtin=HUBSPOT_PROPERTIES,
                      defaults=defaults, unmapped=source.unmapped, limits=limits,
                      what="HubSpot property")


def _form_submission(source: SourceConfig, doc: dict[str, Any], limits: Limits,
                     body: bytes) -> list[Item]:
    fields = doc.get("fields")
    if not isinstance(fields, list):
        raise IntakeError(422, "Invalid HubSpot payload", "`fields` must be a list of "
                          "{name, value}", field="$.fields")
    pairs: list[tuple[str, Any]] = []
    for i, f in enumerate(fields):
        if not isinstance(f, dict) or not isinstance(f.get("name"), str):
            raise IntakeError(422, "Invalid HubSpot payload", f"`fields[{i}]` needs a `name`",
                              field=f"$.fields[{i}].name")
        value = f.get("value")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise IntakeError(422, "Invalid HubSpot payload", f"`fields[{i}].value` must be "
                              "text or a number", field=f"$.fields[{i}].value")
        pairs.append((f["name"], value))
    context = doc.get("context")
    if isinstance(context, dict):
        for key in ("pageUri", "pageName"):  # mapped like fields, by their dotted names
            value = context.get(key)
            if isinstance(value, str) and value:
                pairs.append((f"context.{key}", value))
    lead = build_lead(pairs, mapping=source.fields,
                      builtin={**HUBSPOT_PROPERTIES, "context.pageUri": "attributes.page_uri",
                               "context.pageName": "attributes.page_name"},
                      defaults={"source": source.source, **source.defaults},
                      unmapped=source.unmapped, limits=limits, what="HubSpot field")
    return [Item("form submission", lead=lead, body=body)]


def _contact_object(source: SourceConfig, doc: dict[str, Any], limits: Limits,
                    body: bytes) -> list[Item]:
    props = doc.get("properties")
    if not isinstance(props, dict):
        raise IntakeError(422, "Invalid HubSpot payload", "`properties` must be an object",
                          field="$.properties")
    pairs: list[tuple[str, Any]] = []
    for name, value in props.items():
        # legacy v1 contacts: {"value": "..."}
        pairs.append((str(name), value.get("value") if isinstance(value, dict) else value))
    ident = doc.get("objectId", doc.get("vid", doc.get("id")))
    portal = doc.get("portalId", doc.get("portal-id"))
    external = f"hubspot:{portal}:{ident}" if ident not in (None, "") and portal is not None \
        else (f"hubspot:{ident}" if ident not in (None, "") else None)
    lead = _lead(source, pairs, limits, str(external)[:256] if external else None)
    return [Item(f"contact {ident}", lead=lead, body=body)]


def _events(source: SourceConfig, events: list[Any], limits: Limits) -> list[Item]:
    if len(events) > MAX_EVENTS:
        raise IntakeError(413, "Too many events", f"{len(events)} events in one delivery; the "
                          f"limit is {MAX_EVENTS}", field="$", kind="batch-too-large")
    contacts: dict[tuple[str, str], dict[str, Any]] = {}
    items: list[Item] = []
    for i, ev in enumerate(events):
        if not isinstance(ev, dict):
            items.append(Item(f"event {i}", error=IntakeError(
                422, "Invalid HubSpot event", f"`$[{i}]` is not an event object",
                field=f"$[{i}]")))
            continue
        kind = ev.get("subscriptionType")
        obj = ev.get("objectId")
        if not isinstance(kind, str) or not kind.startswith("contact.") or obj is None:
            why = f"{kind!s:.60} events are not leads"
            if source.outcomes is not None and str(kind).startswith("deal."):
                why += (" (an app webhook's deal event names no contact: send deal stages from "
                        "a workflow webhook, docs/intake.md \"Outcomes\")")
            items.append(Item(f"event {ev.get('eventId', i)}", skipped=why))
            continue
        key = (str(ev.get("portalId", ""))[:40], str(obj)[:40])
        c = contacts.setdefault(key, {"created": False, "props": {}, "changed": set(),
                                      "events": []})
        c["events"].append(str(ev.get("eventId", i))[:40])
        if kind == "contact.creation":
            c["created"] = True
        elif kind == "contact.propertyChange":
            name = ev.get("propertyName")
            if isinstance(name, str):
                value = ev.get("propertyValue")
                c["props"][name] = value
                c["changed"].add(name)
        else:
            items.append(Item(f"event {ev.get('eventId', i)}",
                              skipped=f"{kind[:60]} does not create leads"))
    for (portal, obj), c in contacts.items():
        label = f"contact {obj}"
        trigger = c["created"] or (not source.route_on and c["changed"]) or \
            bool(source.route_on & c["changed"])
        if not trigger:
            items.append(Item(label, skipped="no creation and no change of a route_on property"))
            continue
        if not c["props"].get("email"):
            items.append(Item(label, skipped="no email in this delivery — subscribe to "
                                             "contact.propertyChange for `email`"))
            continue
        try:
            lead = _lead(source, list(c["props"].items()), limits,
                         f"hubspot:{portal}:{obj}" if portal else f"hubspot:{obj}")
        except IntakeError as exc:
            items.append(Item(label, error=exc))
            continue
        items.append(Item(label, lead=lead, body=fingerprint_of(
            {"portal": portal, "object": obj, "props": c["props"]})))
    return items


def hubspot_items(source: SourceConfig, doc: Any, body: bytes, limits: Limits) -> list[Item]:
    """The items of one HubSpot request (see the module docstring for the shapes)."""
    if isinstance(doc, list):
        return _events(source, doc, limits)
    if isinstance(doc, dict):
        if "fields" in doc:
            return _form_submission(source, doc, limits, body)
        if is_deal(source, doc):  # a deal-stage change: an outcome (router/intake/outcomes.py)
            return [deal_item(source, doc)]
        if "properties" in doc:
            return _contact_object(source, doc, limits, body)
    raise IntakeError(422, "Invalid HubSpot payload", "expected a Forms v3 submission "
                      "({fields: [...]}), a list of webhook events or a contact object "
                      "({properties: {...}})", field="$")
