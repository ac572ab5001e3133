"""router/intake/segment.py: Segment messages — ``identify`` traits become a lead (one per
``userId``, ``messageId`` the idempotency key), ``track`` an engagement event, page / screen /
group / alias are acknowledged, batches of up to 500, one bad message failing only itself.
Property tests: hostile JSON and hostile message shapes give items or a 4xx, nothing else."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from _hostile import FAST, LIMITS, assert_items_or_4xx, json_value, text
from _intake import SEGMENT_IDENTIFY, SEGMENT_TRACK, intake_config
from hypothesis import given
from hypothesis import strategies as st

from router.intake.mapping import IntakeError
from router.intake.segment import MAX_BATCH, segment_items

SEGMENT = intake_config().sources["segment"]


def test_identify_traits_become_a_lead() -> None:
    (item,) = segment_items(SEGMENT, SEGMENT_IDENTIFY, LIMITS)
    assert item.label == "message ajs-next-1717000000000-4f1d"
    assert item.key == "ajs-next-1717000000000-4f1d" and item.body
    assert item.lead is not None
    got = {k: v for k, v in msgspec.structs.asdict(item.lead).items() if v not in (None, {})}
    assert got == {
        "email": "peter@initech.example", "first_name": "Peter", "last_name": "Gibbons",
        "title": "VP Engineering", "company": "Initech", "employees": 1200,
        "industry": "Software", "city": "Austin", "state": "TX", "country": "US",
        "utm_campaign": "spring", "utm_source": "google", "utm_medium": "cpc",
        "source": "segment", "external_id": "segment:u_97980cfea0067"}


def test_a_name_and_a_company_as_text() -> None:
    (item,) = segment_items(SEGMENT, {"type": "identify", "userId": 5, "traits": {
        "email": "a@b.example", "name": "Peter Gibbons", "company": "Initech",
        "favourite": "ignored: unmapped traits are dropped for Segment"}}, LIMITS)
    assert item.lead is not None and item.key is None
    assert (item.lead.first_name, item.lead.last_name, item.lead.company) == (
        "Peter", "Gibbons", "Initech")
    assert item.lead.external_id == "segment:5" and item.lead.attributes == {}


def test_track_becomes_an_engagement_event() -> None:
    (item,) = segment_items(SEGMENT, SEGMENT_TRACK, LIMITS)
    assert item.lead is None and item.key == "ajs-next-1717000000001-9a2b"
    assert item.event == {"event": "Demo Requested", "email": "peter@initech.example",
                          "external_id": "segment:u_97980cfea0067",
                          "properties": {"plan": "enterprise"},
                          "timestamp": "2024-05-29T16:01:00.000Z",
                          "messageId": "ajs-next-1717000000001-9a2b"}
    quiet = msgspec.structs.replace(SEGMENT, events=False)
    (off,) = segment_items(quiet, SEGMENT_TRACK, LIMITS)
    assert off.event is None and off.skipped == "track events are off for this source"


def test_a_batch_reports_each_message() -> None:
    batch = [SEGMENT_IDENTIFY, SEGMENT_TRACK, {"type": "page", "messageId": "p1"},
             {"type": "weird"}, 5, {"type": "identify", "messageId": "x"},
             {"type": "track", "event": "Signed Up"}]
    identify, track, page, weird, five, no_traits, no_person = segment_items(
        SEGMENT, {"batch": batch}, LIMITS)
    assert identify.lead is not None and track.event is not None
    assert page.skipped == "page messages are not leads"
    assert weird.error is not None and (weird.error.field, weird.error.detail) == (
        "$.batch[3].type", "unknown message type 'weird'")
    assert five.error is not None and five.error.field == "$.batch[4]"
    assert no_traits.error is not None and no_traits.error.detail == "identify needs `traits`"
    assert no_person.error is not None and no_person.error.detail.startswith(
        "track needs an email (context.traits.email or properties.email) or a userId")
    assert all(i.error is None or i.error.status == 422 for i in (weird, five, no_traits,
                                                                  no_person))


def test_at_most_500_messages_per_batch() -> None:
    assert len(segment_items(SEGMENT, {"batch": [{"type": "page"}] * MAX_BATCH}, LIMITS)) == 500
    with pytest.raises(IntakeError) as info:
        segment_items(SEGMENT, {"batch": [{}] * (MAX_BATCH + 1)}, LIMITS)
    assert (info.value.status, info.value.kind, info.value.field) == (
        413, "batch-too-large", "$.batch")


def test_a_body_that_is_no_message_is_refused() -> None:
    with pytest.raises(IntakeError) as info:
        segment_items(SEGMENT, [SEGMENT_IDENTIFY], LIMITS)
    assert (info.value.status, info.value.field) == (422, "$")
    assert "expected a message object" in info.value.detail


@FAST
@given(doc=json_value)
def test_hostile_json_gives_items_or_a_4xx(doc: Any) -> None:
    assert_items_or_4xx(lambda: segment_items(SEGMENT, doc, LIMITS))


shaped = st.fixed_dictionaries({
    "type": st.sampled_from(["identify", "track", "page", text]),
    "messageId": text, "userId": st.one_of(text, st.integers()), "event": text,
    "traits": st.dictionaries(st.sampled_from(["email", "firstName", "company", "address",
                                               "name", "phone"]), json_value, max_size=5),
})


@FAST
@given(shaped)
def test_segment_shaped_messages(doc: dict[str, Any]) -> None:
    try:
        segment_items(SEGMENT, {"batch": [doc, doc]}, LIMITS)
    except IntakeError as exc:
        assert 400 <= exc.status < 500
