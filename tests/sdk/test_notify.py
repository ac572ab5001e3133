"""leadrouter_sdk.notify: what every channel says about an event, from the event alone."""

from __future__ import annotations

import datetime as dt

from leadrouter_sdk.notify import notice
from leadrouter_sdk.testing import make_event

DECISION = {"lead": {"first_name": "Ann", "last_name": "Lee", "email": "ann@acme.example",
                     "company": "Acme", "employees": 40, "country": "DE"},
            "score": {"total": 71.5, "grade": "B"},
            "explanation": [
                {"stage": "scoring", "outcome": "71.5", "detail": "3 contribution(s)"},
                {"stage": "grade", "outcome": "B", "detail": "highest grade whose ..."},
                {"stage": "territories", "outcome": "dach", "rule": "dach",
                 "detail": "first match; 2 earlier rules did not match"},
                {"stage": "assignment", "outcome": "bob", "detail": "round robin in emea"}]}


def test_an_assignment_with_links() -> None:
    note = notice(make_event("lead.assigned", lead_id="ld_9", owner="bob", pool="emea",
                             due_at=dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC),
                             owner_timezone="Europe/Berlin", decision=DECISION,
                             links={"accept": "https://x/a/1", "reject": "https://x/a/3",
                                    "bogus": "https://x/a/9",
                                    "expires_at": "2024-05-02T12:00:00Z"}))
    assert (note.headline, note.rep, note.pool, note.name) == (
        "New lead for you", "bob", "emea", "Ann Lee")
    assert note.summary == (("Company", "Acme"), ("Employees", "40"), ("Country", "DE"))
    assert note.score == "71.5 (B)" and note.timezone == "Europe/Berlin"
    # the engine's how-it-matched notes and the scoring steps are left out
    assert note.why == ("territories: dach (rule dach)", "assignment: bob: round robin in emea")
    assert note.links == {"accept": "https://x/a/1", "reject": "https://x/a/3"}
    assert note.expires_at == dt.datetime(2024, 5, 2, 12, tzinfo=dt.UTC)
    assert note.due == dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)


def test_a_warning_from_its_own_fields_and_a_bare_event() -> None:
    note = notice(make_event("sla.warning", lead_id="ld_1", rep="carol", minutes_left="9",
                             due="2024-05-01T12:00:00+02:00", reason="the sla is due in 9 min"))
    assert (note.headline, note.rep, note.minutes_left) == ("Lead due soon", "carol", 9)
    assert note.due == dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)
    assert note.why == ("the sla is due in 9 min",) and note.name == "ld_1"
    bare = notice(make_event("lead.custom", lead_id="ld_2", decision="not json",
                             links=["x"], minutes_left="soon"))
    assert (bare.headline, bare.links, bare.minutes_left, bare.rep) == (
        "lead.custom", {}, None, None)
