"""router/intake/items.py: what a machine-source adapter returns per batch item, and the
canonical fingerprint that tells a replayed item (same content) from a reused id (other
content)."""

from __future__ import annotations

from leadrouter_sdk import Lead

from router.intake.items import Item, fingerprint_of
from router.intake.mapping import IntakeError


def test_fingerprints_ignore_key_order_but_not_content() -> None:
    a = {"email": "a@b.example", "n": 1, "nested": {"y": [1, 2], "x": None}}
    b = {"nested": {"x": None, "y": [1, 2]}, "n": 1, "email": "a@b.example"}
    assert fingerprint_of(a) == fingerprint_of(b) == (
        b'{"email":"a@b.example","n":1,"nested":{"x":null,"y":[1,2]}}')
    assert fingerprint_of(a) != fingerprint_of({**a, "n": 2})
    assert fingerprint_of([1, 2]) != fingerprint_of([2, 1])  # lists keep their order


def test_a_value_that_cannot_be_sorted_still_gets_a_stable_fingerprint() -> None:
    odd = {1: "a", "b": 2}  # keys of two types: no canonical order to encode in
    first = fingerprint_of(odd)
    assert first == fingerprint_of({1: "a", "b": 2}) and len(first) == 64  # sha256, hex
    assert first != fingerprint_of({1: "a", "b": 3})


def test_an_item_is_one_of_lead_event_skipped_or_error() -> None:
    lead = Item("$[0]", lead=Lead(email="a@b.example"), key="m-1", body=b"{}")
    assert (lead.label, lead.key, lead.body, lead.event, lead.skipped, lead.error) == (
        "$[0]", "m-1", b"{}", None, None, None)
    event = Item("message m-2", event={"event": "demo"}, key="m-2")
    assert event.lead is None and event.event == {"event": "demo"}
    skipped = Item("message p", skipped="page messages are not leads")
    assert skipped.skipped and skipped.body == b""
    error = IntakeError(422, "Invalid lead", "`$[1]` is not a JSON object", field="$[1]")
    failed = Item("$[1]", error=error)
    assert failed.error is error and failed.error.field == "$[1]"
