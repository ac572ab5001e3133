"""router/intake/hubspot.py: the three shapes HubSpot posts — a Forms v3 submission, app webhook
events (grouped by contact, routed on creation or a ``route_on`` change once there is an email)
and a CRM contact object — with HubSpot property names mapped to lead fields. Property tests:
hostile JSON and hostile event lists give items or a 4xx, nothing else."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from _hostile import FAST, LIMITS, assert_items_or_4xx, json_value, names, text
from _intake import HUBSPOT_FORM, dumps, hubspot_events, intake_config
from hypothesis import given
from hypothesis import strategies as st

from router.intake.hubspot import HUBSPOT_PROPERTIES, MAX_EVENTS, hubspot_items
from router.intake.items import Item
from router.intake.mapping import IntakeError

HUBSPOT = intake_config().sources["hubspot"]


def fields(item: Item) -> dict[str, Any]:
    assert item.lead is not None, (item.skipped, item.error and item.error.detail)
    return {k: v for k, v in msgspec.structs.asdict(item.lead).items() if v not in (None, {})}


def refused(doc: Any) -> IntakeError:
    with pytest.raises(IntakeError) as info:
        hubspot_items(HUBSPOT, doc, b"", LIMITS)
    assert info.value.status in (413, 422)
    return info.value


def test_a_forms_v3_submission_is_one_lead() -> None:
    body = dumps(HUBSPOT_FORM)
    (item,) = hubspot_items(HUBSPOT, HUBSPOT_FORM, body, LIMITS)
    assert item.label == "form submission" and item.body == body
    assert fields(item) == {
        "email": "ana.lima@bigco.example", "first_name": "Ana", "last_name": "Lima",
        "company": "BigCo", "employees": 5000, "country": "US", "source": "hubspot",
        "attributes": {"page_uri": "https://www.example.com/demo", "page_name": "Book a demo"}}


def test_webhook_events_become_one_lead_per_contact() -> None:
    events = hubspot_events()
    deal, contact = hubspot_items(HUBSPOT, events, dumps(events), LIMITS)
    assert (deal.label, deal.skipped) == ("event 103", "deal.creation events are not leads")
    assert contact.label == "contact 12345"
    assert fields(contact) == {"email": "new.contact@acme.example", "employees": 2500,
                               "source": "hubspot", "external_id": "hubspot:62515:12345"}
    # the same contact and changes in another delivery have the same fingerprint
    again = hubspot_items(HUBSPOT, hubspot_events(base_event=500), b"", LIMITS)[1]
    assert again.body == contact.body


def test_a_contact_without_an_email_or_a_routing_change_is_skipped() -> None:
    no_email = [e for e in hubspot_events() if e.get("propertyName") != "email"]
    assert hubspot_items(HUBSPOT, no_email, b"", LIMITS)[1].skipped == (
        "no email in this delivery — subscribe to contact.propertyChange for `email`")
    watched = msgspec.structs.replace(HUBSPOT, route_on=frozenset({"lifecyclestage"}))
    changes = [e for e in hubspot_events() if e["subscriptionType"] == "contact.propertyChange"]
    (item,) = hubspot_items(watched, changes, b"", LIMITS)
    assert item.skipped == "no creation and no change of a route_on property"
    stage = {**changes[0], "propertyName": "lifecyclestage", "propertyValue": "salesqualifiedlead"}
    (item,) = hubspot_items(watched, [*changes, stage], b"", LIMITS)
    assert fields(item)["external_id"] == "hubspot:62515:12345"  # lifecyclestage is ignored


def test_a_bad_event_or_value_fails_only_its_own_item() -> None:
    bad_email = {**hubspot_events()[1], "objectId": 7, "propertyValue": "not-an-email"}
    items = hubspot_items(HUBSPOT, [5, bad_email, *hubspot_events()], b"", LIMITS)
    assert [i.label for i in items] == ["event 0", "event 103", "contact 7", "contact 12345"]
    odd, _, bad, good = items
    assert odd.error is not None and (odd.error.field, odd.error.detail) == (
        "$[0]", "`$[0]` is not an event object")
    assert bad.error is not None and (bad.error.status, bad.error.field) == (422, "email")
    assert fields(good)["email"] == "new.contact@acme.example"


def test_a_crm_contact_object_including_v1_values() -> None:
    doc = {"objectId": 77, "portalId": 62515,
           "properties": {"email": {"value": "v1@old.example"}, "firstname": "Old",
                          "jobtitle": "CTO", "lifecyclestage": "lead", "hs_object_id": "77",
                          "favourite": "not a HubSpot property we map"}}
    (item,) = hubspot_items(HUBSPOT, doc, dumps(doc), LIMITS)
    assert item.label == "contact 77"
    assert fields(item) == {"email": "v1@old.example", "first_name": "Old", "title": "CTO",
                            "source": "hubspot", "external_id": "hubspot:62515:77",
                            "attributes": {"lifecyclestage": "lead"}}  # unmapped: ignore
    (no_portal,) = hubspot_items(HUBSPOT, {"vid": 9, "properties": {"email": "a@b.example"}},
                                 b"", LIMITS)
    assert fields(no_portal)["external_id"] == "hubspot:9"


def test_hubspot_property_names() -> None:
    assert {HUBSPOT_PROPERTIES[k] for k in ("firstname", "jobtitle", "numemployees",
                                            "annualrevenue", "zip")} == {
        "first_name", "title", "employees", "annual_revenue", "postal_code"}


def test_malformed_payloads_are_refused_naming_the_path() -> None:
    assert refused({"fields": "nope"}).field == "$.fields"
    assert refused({"fields": [{"value": "x"}]}).field == "$.fields[0].name"
    assert refused({"fields": [{"name": "email", "value": {"x": 1}}]}).field == \
        "$.fields[0].value"
    assert refused({"properties": []}).field == "$.properties"
    error = refused({"what": 1})
    assert error.field == "$" and "expected a Forms v3 submission" in error.detail
    error = refused({"fields": [{"name": "email", "value": "nope"}]})
    assert (error.status, error.field) == (422, "email")


def test_at_most_1000_events_per_delivery() -> None:
    assert len(hubspot_items(HUBSPOT, [{}] * MAX_EVENTS, b"", LIMITS)) == MAX_EVENTS
    error = refused([{}] * (MAX_EVENTS + 1))
    assert (error.status, error.kind) == (413, "batch-too-large")
    assert error.detail == "1001 events in one delivery; the limit is 1000"


@FAST
@given(doc=json_value)
def test_hostile_json_gives_items_or_a_4xx(doc: Any) -> None:
    assert_items_or_4xx(lambda: hubspot_items(HUBSPOT, doc, dumps(doc), LIMITS))


@FAST
@given(st.lists(st.fixed_dictionaries({
    "subscriptionType": st.sampled_from(["contact.creation", "contact.propertyChange",
                                         "deal.creation", text]),
    "objectId": st.one_of(st.integers(), text), "portalId": st.one_of(st.integers(), text),
    "propertyName": names, "propertyValue": json_value}), max_size=20))
def test_hubspot_shaped_events(events: list[dict[str, Any]]) -> None:
    try:
        hubspot_items(HUBSPOT, events, b"", LIMITS)
    except IntakeError as exc:
        assert 400 <= exc.status < 500
