"""router/intake/generic.py: a JSON source — one object, an array or ``{"leads": [...]}``,
nested names addressed with dots, ``attributes`` passed through, at most 100 leads, and one
bad item reported under its own path without failing the others. A property test: hostile JSON
gives items or a 4xx, nothing else."""

from __future__ import annotations

from typing import Any

import pytest
from _hostile import FAST, LIMITS, assert_items_or_4xx, json_value
from _intake import intake_config
from hypothesis import given

from router.intake.generic import json_items
from router.intake.mapping import IntakeError, Limits

CRM = intake_config().sources["crm"]


def test_dotted_fields_map_and_the_rest_are_attributes() -> None:
    (item,) = json_items(CRM, {"contact": {"email": "kim@globex.example", "first": "Kim"},
                               "account": {"size": "1,500", "country": "Germany"},
                               "attributes": {"plan": "pro"}, "extra": {"x": 1}}, LIMITS)
    assert item.label == "$" and item.error is None and item.lead is not None
    got = item.lead
    assert (got.email, got.first_name, got.employees, got.country, got.source) == (
        "kim@globex.example", "Kim", 1500, "DE", "crm")
    assert got.attributes == {"plan": "pro", "extra.x": 1}
    # the fingerprint is of the item as sent, whatever the key order
    (again,) = json_items(CRM, {"extra": {"x": 1}, "attributes": {"plan": "pro"},
                                "account": {"country": "Germany", "size": "1,500"},
                                "contact": {"first": "Kim", "email": "kim@globex.example"}},
                          LIMITS)
    assert again.body == item.body != b""


@pytest.mark.parametrize("doc", [
    [{"contact": {"email": "a@b.example"}}, {"email": "c@d.example"}],
    {"leads": [{"contact": {"email": "a@b.example"}}, {"email": "c@d.example"}]},
])
def test_arrays_and_the_leads_wrapper(doc: Any) -> None:
    items = json_items(CRM, doc, LIMITS)
    assert [i.label for i in items] == ["$[0]", "$[1]"]
    assert [i.lead.email for i in items if i.lead] == ["a@b.example", "c@d.example"]


def test_one_bad_item_does_not_fail_the_others() -> None:
    ok, bad, odd = json_items(CRM, {"leads": [{"contact": {"email": "a@b.example"}},
                                              {"contact": {"email": "nope"}}, 5]}, LIMITS)
    assert ok.lead is not None and ok.error is None
    assert bad.lead is None and bad.error is not None
    assert (bad.error.status, bad.error.field) == (422, "$[1].contact.email")
    assert bad.error.detail.startswith("`contact.email` (lead field email): not a valid email")
    assert odd.error is not None and (odd.error.field, odd.error.detail) == (
        "$[2]", "`$[2]` is not a JSON object")


def test_at_most_100_leads_per_request() -> None:
    assert len(json_items(CRM, [{"email": f"a{i}@b.example"} for i in range(100)],
                          LIMITS)) == 100
    with pytest.raises(IntakeError) as info:
        json_items(CRM, [{}] * 101, LIMITS)
    assert (info.value.status, info.value.kind, info.value.field) == (413, "batch-too-large", "$")
    assert info.value.detail == "101 leads in one request; the limit is 100"


def test_field_limits_apply_per_lead() -> None:
    (item,) = json_items(CRM, {"contact": {"email": "a@b.example", "first": "x" * 21}},
                         Limits(max_value_chars=20))
    assert item.error is not None
    assert (item.error.status, item.error.field) == (422, "$.contact.first")


@FAST
@given(doc=json_value)
def test_hostile_json_gives_items_or_a_4xx(doc: Any) -> None:
    assert_items_or_4xx(lambda: json_items(CRM, doc, LIMITS))
