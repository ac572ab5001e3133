"""router/intake/events.py: the accepted shapes of an engagement event (README "POST
/v1/events", docs/rules.md "engagement") — the plain ``{email | lead_id | external_id, event,
timestamp, messageId}``, Segment ``track`` and ``identify``; epoch seconds, epoch milliseconds
and ISO 8601 times; Segment-style traits as lead fields, nested ``company`` / ``address``
included; and every refusal naming the field path (``$.event``, ``$.traits.employees``), which
is what the API reports. What an event then does to a person is tested through HTTP in
tests/api/test_events.py."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import msgspec
import pytest
from _hostile import FAST, json_value, text
from hypothesis import given
from hypothesis import strategies as st

from router.intake.events import EventIn, event_from_payload, traits_to_fields

T0 = dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)  # epoch second 1_700_000_000
# How router/api/events.py finds the field in a refusal: the message must end like this.
PATH = re.compile(r" - at `(\$[^`]*)`$")


def refusal(doc: Any, path: str = "$") -> tuple[str, str]:
    """The field path and message ``event_from_payload`` refuses ``doc`` with."""
    with pytest.raises(msgspec.ValidationError) as info:
        event_from_payload(doc, path)
    found = PATH.search(str(info.value))
    assert found, f"the refusal names no field path: {info.value}"
    return found.group(1), PATH.sub("", str(info.value))


def refused_at(doc: Any, path: str = "$") -> str:
    return refusal(doc, path)[0]


# --- the plain shape -----------------------------------------------------------------------------


def test_the_plain_shape() -> None:
    ev = event_from_payload({"email": " Pat@Big.Example ", "event": "email_clicked",
                             "timestamp": "2023-11-14T22:13:20Z", "messageId": "m-1",
                             "properties": {"campaign": "spring"}, "source": "web"})
    assert ev == EventIn(kind="track", event="email_clicked", email="pat@big.example",
                         timestamp=T0, message_id="m-1", source="web")
    assert ev.identity == "pat@big.example"


@pytest.mark.parametrize(("who", "expected"), [
    ({"lead_id": "ld_1"}, {"lead_id": "ld_1"}),
    ({"leadId": "ld_1"}, {"lead_id": "ld_1"}),
    ({"external_id": "crm-42"}, {"external_id": "crm-42"}),
    ({"externalId": 42}, {"external_id": "42"}),  # numeric ids from CRMs are kept as text
])
def test_a_lead_id_or_an_external_id_says_who_instead_of_an_email(
        who: dict[str, Any], expected: dict[str, str]) -> None:
    ev = event_from_payload({"event": "demo_requested", "message_id": "m-2", **who})
    assert ev == EventIn(event="demo_requested", message_id="m-2", **expected)
    assert ev.identity == next(iter(expected.values()))


def test_text_is_trimmed_and_blank_counts_as_missing() -> None:
    ev = event_from_payload({"event": "  x  ", "email": "", "lead_id": "  ld_1 ",
                             "messageId": "  m1  "})
    assert (ev.event, ev.email, ev.lead_id, ev.message_id) == ("x", None, "ld_1", "m1")


# --- times ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("stamp", [
    1_700_000_000,                     # epoch seconds
    1_700_000_000_000,                 # epoch milliseconds
    1_700_000_000.0,
    "2023-11-14T22:13:20Z",
    "2023-11-14T22:13:20+00:00",
    "2023-11-14T22:13:20",             # no offset: UTC
    "2023-11-14 22:13:20Z",
    "2023-11-15T00:13:20+02:00",       # the same instant elsewhere
])
def test_epoch_seconds_milliseconds_and_iso_times_are_the_same_instant(stamp: Any) -> None:
    ev = event_from_payload({"email": "a@b.example", "event": "x", "timestamp": stamp})
    assert ev.timestamp == T0 and ev.timestamp.tzinfo is not None


def test_fractions_of_a_second_are_kept() -> None:
    seconds = event_from_payload({"email": "a@b.example", "event": "x",
                                  "timestamp": 1_700_000_000.5}).timestamp
    millis = event_from_payload({"email": "a@b.example", "event": "x",
                                 "timestamp": 1_700_000_000_500}).timestamp
    assert seconds == millis == T0 + dt.timedelta(milliseconds=500)


def test_segment_original_timestamp_and_no_time_at_all() -> None:
    segment = {"email": "a@b.example", "event": "x", "timestamp": None,
               "originalTimestamp": "2023-11-14T22:13:20Z"}
    assert event_from_payload(segment).timestamp == T0
    # No time: the service records the event at its own now.
    assert event_from_payload({"email": "a@b.example", "event": "x"}).timestamp is None


@pytest.mark.parametrize(("stamp", "message"), [
    ("yesterday", "Expected an ISO 8601 time such as 2024-05-01T12:00:00Z"),
    (True, "Expected an ISO 8601 time or epoch milliseconds"),
    ({"at": 1}, "Expected an ISO 8601 time or epoch milliseconds"),
    (1e30, "Expected a time"),
    (float("inf"), "Expected a time"),
])
def test_a_bad_time_is_refused_at_its_field(stamp: Any, message: str) -> None:
    assert refusal({"email": "a@b.example", "event": "x", "timestamp": stamp}) == (
        "$.timestamp", message)
    assert refused_at({"email": "a@b.example", "event": "x",
                       "originalTimestamp": stamp}) == "$.originalTimestamp"


# --- Segment track and identify ------------------------------------------------------------------


def test_segment_track_finds_the_email_in_its_context_traits() -> None:
    ev = event_from_payload({
        "type": "track", "event": "Demo Requested", "userId": "u-1", "anonymousId": "a-1",
        "context": {"traits": {"email": "Peter@Initech.Example"}}, "messageId": "seg-1",
        "timestamp": "2023-11-14T22:13:20Z", "properties": {"plan": "pro"}})
    assert ev == EventIn(kind="track", event="Demo Requested", email="peter@initech.example",
                         user_id="u-1", anonymous_id="a-1", timestamp=T0, message_id="seg-1")


@pytest.mark.parametrize(("doc", "email"), [
    ({"email": "top@b.example", "traits": {"email": "t@b.example"}}, "top@b.example"),
    ({"traits": {"email": "t@b.example"}, "context": {"traits": {"email": "c@b.example"}},
      "properties": {"email": "p@b.example"}}, "t@b.example"),
    ({"context": {"traits": {"email": "c@b.example"}}, "properties": {"email": "p@b.example"}},
     "c@b.example"),
    ({"properties": {"email": "p@b.example"}, "userId": "u@b.example"}, "p@b.example"),
    ({"userId": "u@b.example"}, "u@b.example"),  # a userId that is an email address
])
def test_where_the_email_is_looked_for_first(doc: dict[str, Any], email: str) -> None:
    assert event_from_payload({"event": "x", **doc}).email == email


def test_a_user_or_anonymous_id_alone_says_who() -> None:
    ev = event_from_payload({"type": "track", "event": "x", "userId": 42})
    assert (ev.user_id, ev.email, ev.identity) == ("42", None, "42")
    anonymous = event_from_payload({"event": "x", "anonymous_id": "anon-1"})
    assert (anonymous.anonymous_id, anonymous.identity) == ("anon-1", "anon-1")


def test_identify_maps_its_traits_to_lead_fields() -> None:
    ev = event_from_payload({
        "type": "identify", "userId": "u-1", "messageId": "seg-2",
        "traits": {"email": "peter@initech.example", "firstName": "Peter",
                   "company": {"name": "Initech", "employee_count": 1200},
                   "address": {"country": "US", "postal_code": "78701"}}})
    assert ev == EventIn(kind="identify", email="peter@initech.example", user_id="u-1",
                         message_id="seg-2", traits={
                             "first_name": "Peter", "company": "Initech", "employees": 1200,
                             "country": "US", "postal_code": "78701"})
    assert ev.event is None  # identify needs no event name


def test_identify_reads_context_traits_when_it_has_no_traits_of_its_own() -> None:
    ev = event_from_payload({"type": "identify", "anonymousId": "a-1",
                             "context": {"traits": {"email": "p@b.example",
                                                    "name": "Pat Doe"}}})
    assert (ev.email, ev.traits) == ("p@b.example", {"first_name": "Pat", "last_name": "Doe"})
    own = event_from_payload({"type": "identify", "userId": "u",
                              "traits": {"company": {"name": "A"}},
                              "context": {"traits": {"title": "CTO"}}})
    assert own.traits == {"company": "A"}


def test_track_traits_say_who_but_change_no_field() -> None:
    ev = event_from_payload({"type": "track", "event": "x",
                             "traits": {"email": "a@b.example", "firstName": "Pat"}})
    assert (ev.email, ev.traits) == ("a@b.example", {})


def test_identify_without_traits_is_accepted() -> None:
    ev = event_from_payload({"type": "identify", "email": "a@b.example"})
    assert (ev.kind, ev.event, ev.traits) == ("identify", None, {})


# --- traits as lead fields -----------------------------------------------------------------------


def test_traits_become_normalized_lead_fields() -> None:
    assert traits_to_fields({
        "firstName": "Pat", "last_name": "Doe", "jobTitle": "CTO", "phone": "+1 512 555 0100",
        "website": "https://www.Big.Example/pricing", "employees": "1,500",
        "annualRevenue": 1_000_000, "industry": "Software", "country": "Germany",
        "state": "BE", "city": "Berlin", "zip": "10115",
    }) == {"first_name": "Pat", "last_name": "Doe", "title": "CTO", "phone": "+15125550100",
           "domain": "big.example", "employees": 1500, "annual_revenue": 1_000_000.0,
           "industry": "Software", "country": "DE", "state": "BE", "city": "Berlin",
           "postal_code": "10115"}


def test_nested_company_and_address() -> None:
    assert traits_to_fields({
        "company": {"name": "Big", "employee_count": 1200, "industry": "Software",
                    "website": "big.example", "plan": "ignored"},
        "address": {"country": "de", "region": "BE", "city": "Berlin", "postalCode": "10115",
                    "street": "ignored"},
    }) == {"company": "Big", "employees": 1200, "industry": "Software", "domain": "big.example",
           "country": "DE", "state": "BE", "city": "Berlin", "postal_code": "10115"}
    assert traits_to_fields({"company": "Big Inc"}) == {"company": "Big Inc"}


@pytest.mark.parametrize("traits", [
    {"company": {"name": "Nested"}, "companyName": "Flat"},
    {"companyName": "Flat", "company": {"name": "Nested"}},
])
def test_a_flat_trait_wins_over_a_nested_one(traits: dict[str, Any]) -> None:
    assert traits_to_fields(traits) == {"company": "Flat"}


def test_a_full_name_fills_only_the_names_not_given() -> None:
    assert traits_to_fields({"name": "Pat van Doe"}) == {"first_name": "Pat",
                                                         "last_name": "van Doe"}
    assert traits_to_fields({"name": "Pat van Doe", "firstName": "Patricia"}) == {
        "first_name": "Patricia", "last_name": "van Doe"}
    assert traits_to_fields({"firstName": "Patricia", "name": "Pat"}) == {
        "first_name": "Patricia"}


def test_the_email_unknown_traits_and_non_values_are_left_out() -> None:
    assert traits_to_fields({}) == {}
    assert traits_to_fields({"email": "p@b.example", "favourite": "x", "phone": None,
                             "tags": ["a"], "address": "1 Main St"}) == {}


def test_a_trait_a_lead_would_refuse_names_its_field() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"at `\$\.employees`"):
        traits_to_fields({"employees": "lots"})


# --- refusals name the field ---------------------------------------------------------------------


@pytest.mark.parametrize(("doc", "path"), [
    ([1], "$"),
    ("track", "$"),
    ({"event": "x"}, "$"),  # nobody did it
    ({"email": "", "lead_id": " ", "event": "x"}, "$"),
    ({"type": "page", "event": "x", "email": "a@b.example"}, "$.type"),
    ({"email": "a@b.example"}, "$.event"),
    ({"email": "a@b.example", "event": "  "}, "$.event"),
    ({"email": "a@b.example", "event": 5}, "$.event"),
    ({"email": "a@b.example", "event": "x" * 129}, "$.event"),
    ({"email": "a@b.example", "event": "a\nb"}, "$.event"),
    ({"email": "nope", "event": "x"}, "$.email"),
    ({"email": 5, "event": "x"}, "$.email"),
    ({"traits": {"email": "bad"}, "event": "x"}, "$.traits.email"),
    ({"context": {"traits": {"email": "bad"}}, "event": "x"}, "$.context.traits.email"),
    ({"properties": {"email": "bad"}, "event": "x"}, "$.properties.email"),
    ({"userId": "a@", "event": "x"}, "$.userId"),
    ({"userId": True, "event": "x"}, "$.userId"),
    ({"anonymousId": [1], "event": "x"}, "$.anonymousId"),
    ({"context": "web", "email": "a@b.example", "event": "x"}, "$.context"),
    ({"properties": [1], "email": "a@b.example", "event": "x"}, "$.properties"),
    ({"type": "identify", "userId": "u", "traits": [1]}, "$.traits"),
    ({"type": "identify", "userId": "u", "traits": {"employees": "lots"}},
     "$.traits.employees"),
    ({"type": "identify", "userId": "u", "traits": {"company": {"employee_count": -5}}},
     "$.traits.employees"),
    ({"lead_id": "l" * 65, "event": "x"}, "$.lead_id"),
    ({"external_id": "e" * 257, "event": "x"}, "$.external_id"),
    ({"email": "a@b.example", "event": "x", "source": "s" * 101}, "$.source"),
    ({"email": "a@b.example", "event": "x", "messageId": "m" * 201}, "$.messageId"),
])
def test_every_refusal_names_the_field(doc: Any, path: str) -> None:
    assert refused_at(doc) == path


def test_a_batch_item_is_refused_under_its_own_path() -> None:
    assert refused_at({"email": "a@b.example"}, "$[3]") == "$[3].event"
    assert refused_at({"type": "identify", "userId": "u", "traits": {"employees": "lots"}},
                      "$[3]") == "$[3].traits.employees"


def test_the_refusals_say_what_is_expected() -> None:
    assert refusal({"email": "a@b.example"}) == (
        "$.event", "Expected the event name (1 to 128 characters)")
    assert refusal({"event": "x"}) == (
        "$", "Expected who did it: email, lead_id, external_id, userId or anonymousId")
    assert refusal({"type": "alias", "event": "x", "email": "a@b.example"}) == (
        "$.type", "Expected `track` or `identify`, got 'alias'")


@pytest.mark.parametrize(("doc", "key"), [
    ({"email": "a@b.example", "event": "x", "timestmp": "2024-05-01T12:00:00Z"}, "timestmp"),
    ({"emial": "a@b.example", "event": "x"}, "emial"),
    ({"email": "a@b.example", "evnt": "x"}, "evnt"),
    ({"email": "a@b.example", "event": "x", "TimeStamp": 1_700_000_000}, "TimeStamp"),
    ({"userid": "u-1", "event": "x"}, "userid"),
])
def test_a_misspelt_key_is_refused_rather_than_ignored(doc: dict[str, Any], key: str) -> None:
    # the API adds "did you mean" (tests/api/test_events.py); here: which key, at which object
    assert refusal(doc) == ("$", f"Object contains unknown field `{key}`")
    assert refusal(doc, "$[2]")[0] == "$[2]"


@pytest.mark.parametrize("doc", [
    # Segment's own keys, keys far from any, and a near miss of a key the event has
    {"email": "a@b.example", "event": "x", "sentAt": "2024-05-01T12:00:00Z",
     "receivedAt": "2024-05-01T12:00:01Z", "channel": "server", "integrations": {},
     "version": 2, "writeKey": "k", "groupId": "g", "_metadata": {}, "category": None},
    {"email": "a@b.example", "event": "x", "plan": "pro", "utm": "spring"},
    {"email": "a@b.example", "event": "x", "timestamp": T0.isoformat(), "timestmp": "junk",
     "originalTimestampz": 1},
])
def test_other_unknown_keys_are_still_ignored(doc: dict[str, Any]) -> None:
    assert event_from_payload(doc).email == "a@b.example"


# --- hostile input -------------------------------------------------------------------------------


def event_or_refusal(doc: Any) -> None:
    """An event that says who did it (and what, unless it is an identify), or a refusal the
    API can report: nothing else."""
    try:
        ev = event_from_payload(doc)
    except msgspec.ValidationError as exc:
        assert PATH.search(str(exc)), str(exc)
    else:
        assert ev.identity and (ev.kind == "identify" or ev.event)


@FAST
@given(doc=json_value)
def test_any_json_gives_an_event_or_a_refusal_naming_a_path(doc: Any) -> None:
    event_or_refusal(doc)


shaped = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["track", "identify"]), "event": text,
    "email": st.one_of(text, json_value), "lead_id": text, "external_id": json_value,
    "userId": json_value, "anonymousId": text, "timestamp": json_value, "messageId": text,
    "traits": st.dictionaries(st.sampled_from(["email", "firstName", "employees", "company",
                                               "address", "website", "name"]), json_value),
    "context": json_value, "properties": json_value})


@FAST
@given(doc=shaped)
def test_event_shaped_hostile_input(doc: dict[str, Any]) -> None:
    event_or_refusal(doc)
