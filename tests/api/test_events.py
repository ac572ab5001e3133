"""``POST /v1/events`` through the real HTTP service against real Valkey, with a clock the test
sets (no sleeping for days): dedupe, events before the lead, identify, window edges, exact decay,
caps, explanations, re-scoring, re-qualification exactly once under a burst of events, falls,
recycled leads, and what an event costs in round trips."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from _service import AUTH, assert_problem, write_rules

from router.observability import metrics

# Scores: fit.big 25 (employees >= 1000); eng.pricing 10 when 2+ pricing views in 7 days;
# decaying points (half-life 14 days): demo 30, webinar 10 capped at 25, email click 2.
# mql from 50, sql from 80; nurture leads wait in the `nurture` queue, the others go to rr.
SCORING = """\
scoring:
  fit:
    - {id: fit.big, when: "employees >= 1000", points: 25}
  engagement:
    - {id: eng.pricing, when: 'count("pricing_page_viewed", days=7) >= 2', points: 10}
    - {id: eng.recent, when: 'days_since(last("page_viewed")) <= 3', points: 1}
engagement:
  half_life: 14d
  events:
    demo_requested: {points: 30, description: "asked for a demo"}
    webinar_attended: {points: 10, cap: 25}
    email_clicked: 2
grades: {A: 80, B: 50, C: 20, D: 0}
qualification:
  - {id: q.sql, status: sql, when: "score >= 80"}
  - {id: q.mql, status: mql, when: "score >= 50"}
  - {id: q.nurture, status: nurture, when: "true"}
"""
ROUTING = """\
pools:
  rr: {strategy: round_robin, members: [r1, r2, r3], working_hours: false}
assignment:
  - {id: to-nurture, when: 'status == "nurture"', queue: nurture}
  - {id: to-rr, when: "true", pool: rr}
"""
CASES = """\
cases:
  - name: a big company with no engagement is nurtured
    lead: {email: a@big.example, employees: 5000}
    expect: {status: nurture, score: 25}
  - name: a demo request today makes it an MQL (25 + 30)
    lead: {email: a@big.example, employees: 5000}
    state: {events: [{event: demo_requested, days_ago: 0}]}
    expect: {status: mql, score: 55, pool: rr}
  - name: a demo 14 days ago is worth half (25 + 15)
    lead: {email: a@big.example, employees: 5000}
    state: {events: [{event: demo_requested, days_ago: 14}]}
    expect: {status: nurture, score: 40}
"""

T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
JSON = {"Content-Type": "application/json"}


class FixedClock:
    """The service's clock: stands still at ``now`` until the test moves it."""

    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def set(self, when: dt.datetime) -> None:
        self.now = when


def iso(when: dt.datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


@pytest.fixture
def eng_rules(tmp_path: Path) -> Path:
    return write_rules(tmp_path / "rules", {"scoring.yaml": SCORING, "routing.yaml": ROUTING,
                                           "tests/cases.yaml": CASES})


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def api(start_service: Callable[..., Any], eng_rules: Path, clock: FixedClock
        ) -> Iterator[httpx.Client]:
    server = start_service(clock=clock, rules_dir=str(eng_rules))
    with server.client() as client:
        yield client


def post(api: httpx.Client, body: Any) -> httpx.Response:
    return api.post("/v1/events", json=body)


def new_lead(api: httpx.Client, email: str = "pat@big.example", **fields: Any) -> dict[str, Any]:
    r = api.post("/v1/leads", json={"email": email, "employees": 5000, **fields})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def engagement_of(decision: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["rule"]: c for c in decision["score"]["contributions"]
            if c["rule"].startswith("engagement:")}


# --- shapes, dedupe ------------------------------------------------------------------------------


def test_plain_segment_track_and_batch_shapes(api: httpx.Client) -> None:
    r = post(api, {"email": "Pat@Big.Example", "event": "email_clicked",
                   "timestamp": iso(T0), "properties": {"campaign": "spring"}})
    assert r.status_code == 202, r.text
    assert r.json() == {"status": "recorded", "event": "email_clicked", "seq": 1}
    segment = {"type": "track", "event": "email_clicked", "userId": "u-1",
               "context": {"traits": {"email": "pat@big.example"}},
               "messageId": "seg-1", "timestamp": iso(T0), "properties": {}}
    batch = post(api, {"batch": [segment, {"event": "x"}, {"email": "nope", "event": "y"}]})
    assert batch.status_code == 200
    results = batch.json()
    assert [x["status"] for x in results["results"]] == ["recorded", "failed", "failed"]
    assert results["results"][0]["seq"] == 2
    assert results["results"][1]["problem"]["errors"][0]["path"] == "$[1]"
    assert results["results"][2]["problem"]["errors"][0]["path"] == "$[2].email"
    assert results["recorded"] == 1 and results["failed"] == 2
    assert_problem(post(api, {"email": "pat@big.example"}), 422)
    assert_problem(post(api, {"lead_id": "ld_missing", "event": "x"}), 404)
    assert_problem(api.post("/v1/events", content=b"{nope", headers=JSON), 400)
    got = api.get("/v1/engagement", params={"email": "pat@big.example"}, headers=AUTH).json()
    assert got["events"] == [{"event": "email_clicked", "count": 2, "last_at": iso(T0),
                              "windows": {}}]


def test_a_misspelt_field_gets_a_did_you_mean(api: httpx.Client) -> None:
    """Issue 21, item 11: a misspelt event field was dropped without a word (`timestmp`: the
    event recorded as of now). Now 422 naming it and the field meant, alone and in a batch."""
    problem = assert_problem(post(api, {"email": "pat@big.example", "event": "x",
                                        "timestmp": iso(T0)}), 422)
    assert problem["errors"] == [{"path": "$.timestmp", "message": (
        "Object contains unknown field `timestmp` — did you mean `timestamp`?")}]
    batch = post(api, {"batch": [{"emial": "pat@big.example", "event": "x"},
                                 {"email": "pat@big.example", "event": "x", "sentAt": iso(T0)}]})
    results = batch.json()["results"]
    assert [r["status"] for r in results] == ["failed", "recorded"]
    assert results[0]["problem"]["errors"][0]["path"] == "$[0].emial"
    assert "did you mean `email`?" in results[0]["problem"]["detail"]


def test_an_external_id_finds_its_lead(api: httpx.Client) -> None:
    """The plain shape the Segment source adapter hands over: a userId as external_id."""
    lead_id = new_lead(api, external_id="crm-42")["lead_id"]
    r = post(api, {"external_id": "crm-42", "event": "demo_requested", "messageId": "x1"})
    assert r.status_code == 202, r.text
    assert r.json()["lead"]["lead_id"] == lead_id
    assert r.json()["lead"]["outcome"] == "requalified"
    assert_problem(post(api, {"external_id": "crm-43", "event": "x"}), 404)


@pytest.mark.anyio
async def test_events_from_the_source_adapters(redis_url: str, eng_rules: Path) -> None:
    """``/v1/sources/{id}`` hands Segment tracks to ``record_from_source`` (plain shape)."""
    from leadrouter_sdk import Lead

    from router.services.engagement import EngagementService
    from router.services.leads import LeadService
    from router.services.rules import RulesManager
    from router.settings import Settings
    from router.state.engagement import EngagementStore
    from router.state.store import Store

    (eng_rules / "intake.yaml").write_text(
        "sources:\n  segment:\n    secret_env: LR_TEST_SEGMENT_SECRET\n", encoding="utf-8")
    rules = RulesManager(eng_rules)
    rules.load_initial()
    store = await Store.connect(redis_url)
    try:
        engagement = EngagementStore(store)
        service = EngagementService(state=engagement, rules=rules, clock=lambda: T0)
        leads = LeadService(store=store, rules=rules, settings=Settings(redis_url=redis_url),
                            clock=lambda: T0, engagement=engagement.limits,
                            rescore=service.after_commit)
        lead = Lead(email="u1@big.example", employees=5000, external_id="segment:u1",
                    source="segment")
        _, _, lead_id = await leads.route(lead, body=b"1", source="segment")
        got = await service.record_from_source(
            {"event": "demo_requested", "external_id": "segment:u1", "messageId": "s1",
             "properties": {"plan": "pro"}, "timestamp": iso(T0)})
        assert got["status"] == "recorded" and got["lead"]["lead_id"] == lead_id
        assert got["lead"]["outcome"] == "requalified"
        missing = await service.record_from_source({"event": "x",
                                                    "external_id": "segment:nobody"})
        assert missing["status"] == "failed" and "segment:nobody" in missing["detail"]
    finally:
        await store.close()


def test_message_id_dedupes(api: httpx.Client) -> None:
    event = {"email": "pat@big.example", "event": "demo_requested", "messageId": "m-1",
             "timestamp": iso(T0)}
    stored = metrics.sample_value("leadrouter_events_ingested_total", {"outcome": "stored"})
    dupes = metrics.sample_value("leadrouter_events_ingested_total", {"outcome": "duplicate"})
    assert post(api, event).status_code == 202
    again = post(api, event)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    # the service runs in this process: its counters are ours to read
    assert metrics.sample_value("leadrouter_events_ingested_total",
                                {"outcome": "stored"}) == stored + 1
    assert metrics.sample_value("leadrouter_events_ingested_total",
                                {"outcome": "duplicate"}) == dupes + 1
    batch = post(api, [event, {**event, "messageId": "m-2"}, {**event, "messageId": "m-2"}])
    assert [x["status"] for x in batch.json()["results"]] == [
        "duplicate", "recorded", "duplicate"]
    got = api.get("/v1/engagement", params={"email": "pat@big.example"}, headers=AUTH).json()
    assert got["contributions"][0]["count"] == 2


# --- events before the lead, identify -------------------------------------------------------------


def test_events_before_the_lead_count_when_it_arrives(api: httpx.Client,
                                                      clock: FixedClock) -> None:
    post(api, {"email": "pat@big.example", "event": "demo_requested", "timestamp": iso(T0)})
    clock.set(T0 + 14 * DAY)  # one half-life later: the demo is worth 15
    decision = new_lead(api)
    assert decision["score"]["engagement"] == 15.0
    assert decision["score"]["total"] == 40.0 and decision["status"] == "nurture"
    demo = engagement_of(decision)["engagement:demo_requested"]
    assert demo == {"rule": "engagement:demo_requested", "group": "engagement",
                    "points": 15.0,
                    "reason": "1 x 30 = 30 raw, 15 after decay (half-life 14d)"}
    steps = [s for s in decision["explanation"] if s["stage"] == "engagement"]
    assert steps == [{"stage": "engagement", "outcome": "15",
                      "rule": "engagement:demo_requested",
                      "detail": "1 x 30 = 30 raw, 15 after decay (half-life 14d)"}]


@pytest.mark.parametrize("optimistic", [True, False])
def test_a_lead_is_decided_on_what_its_commit_finds(start_service: Callable[..., Any],
                                                    eng_rules: Path, clock: FixedClock,
                                                    optimistic: bool) -> None:
    """Optimistic reads (docs/operations.md): a lead is decided as if its person had no
    engagement, and the commit checks that. A person with events makes the guess stale:
    nothing is written, the lead is decided again on what the commit found. The worker never
    remembers a person's hash (their traits must not outlive an erasure in its memory), so
    every lead of a person with events costs the second round trip."""
    server = start_service(clock=clock, rules_dir=str(eng_rules), sla_poll_seconds=0,
                           optimistic_reads=optimistic)
    store = server.server.config.app.state.services.leads.store
    right, stale = (metrics.OPTIMISTIC_READS.real.labels(o) for o in ("right", "stale"))

    def lead_costs(email: str) -> tuple[int, dict[str, Any]]:
        metrics.flush()
        trips = store.round_trips
        decision = new_lead(api, email)
        return store.round_trips - trips, decision

    with server.client() as api:
        metrics.flush()
        right0, stale0 = right._value.get(), stale._value.get()
        trips, decision = lead_costs("new@big.example")
        assert (trips, decision["score"]["engagement"]) == (1 if optimistic else 2, 0.0)
        post(api, {"email": "pat@big.example", "event": "demo_requested",
                   "timestamp": iso(T0)})
        trips, decision = lead_costs("pat@big.example")
        assert decision["score"]["engagement"] == 30.0 and decision["status"] == "mql"
        assert trips == 2
        assert len(api.get(f"/v1/leads/{decision['lead_id']}").json()["history"]) == 2
        post(api, {"email": "pat@big.example", "event": "webinar_attended",
                   "timestamp": iso(T0)})
        trips, decision = lead_costs("pat@big.example")
        assert (trips, decision["score"]["engagement"]) == (2, 40.0)
        metrics.flush()
        assert (right._value.get() - right0, stale._value.get() - stale0) == \
            ((1, 2) if optimistic else (0, 0))


def test_a_reload_that_reads_other_events_is_not_guessed_from_the_old_read(
        start_service: Callable[..., Any], eng_rules: Path, clock: FixedClock) -> None:
    """A reload that adds an event type reads more fields of the person's hash than before:
    no guess made for the old field list may be handed out for the new one."""
    server = start_service(clock=clock, rules_dir=str(eng_rules), sla_poll_seconds=0)
    with server.client() as api:
        post(api, {"email": "pat@big.example", "event": "demo_requested", "timestamp": iso(T0)})
        assert new_lead(api)["score"]["engagement"] == 30.0
        (eng_rules / "scoring.yaml").write_text(SCORING.replace(
            "    email_clicked: 2\n", "    email_clicked: 2\n    trial_started: 20\n"))
        r = api.post("/v1/admin/rules/reload", headers=AUTH)
        assert r.status_code == 200, r.text
        post(api, {"email": "pat@big.example", "event": "trial_started", "timestamp": iso(T0)})
        decision = new_lead(api)
        assert decision["score"]["engagement"] == 50.0
        assert set(engagement_of(decision)) == {"engagement:demo_requested",
                                                "engagement:trial_started"}


def test_identify_links_an_anonymous_visitor(api: httpx.Client, clock: FixedClock) -> None:
    for i in range(2):
        r = post(api, {"type": "track", "anonymousId": "anon-7", "event": "pricing_page_viewed",
                       "timestamp": iso(T0 - i * DAY), "messageId": f"p{i}"})
        assert r.json()["status"] == "recorded"
    r = post(api, {"type": "identify", "anonymousId": "anon-7", "userId": "user-7",
                   "traits": {"email": "Sam@Big.Example", "firstName": "Sam",
                              "company": {"name": "Big", "employee_count": 5000}},
                   "messageId": "i1"})
    assert r.status_code == 202 and r.json()["status"] == "identified", r.text
    assert r.json()["merged"] == 1
    # After identify, the user id and the anonymous id both mean Sam.
    assert post(api, {"type": "track", "userId": "user-7", "event": "email_clicked"}
                ).json()["status"] == "recorded"
    got = api.get("/v1/engagement", params={"email": "sam@big.example"}, headers=AUTH).json()
    assert {e["event"]: e["count"] for e in got["events"]} == {
        "email_clicked": 1, "pricing_page_viewed": 2}
    # The lead posted later gets the traits it lacks and the anonymous history.
    r = api.post("/v1/leads", json={"email": "sam@big.example"})
    decision = r.json()
    assert decision["score"]["contributions"][0]["rule"] == "fit.big"  # employees from traits
    assert "eng.pricing" in decision["matched"]
    assert decision["score"]["total"] == 25 + 10 + 2.0
    # An identify for an existing lead re-scores it with the new traits.
    clock.set(T0 + dt.timedelta(hours=1))
    r = post(api, {"type": "identify", "userId": "user-7", "traits": {"employees": 10}})
    lead = r.json()["lead"]
    assert lead["outcome"] == "rescored"  # no fit.big any more; the click is an hour old
    assert lead["score"] == 10 + round(2 * 2 ** (-1 / (14 * 24)), 4)


# --- windows, decay, caps -------------------------------------------------------------------------


def test_window_edges(api: httpx.Client, clock: FixedClock) -> None:
    """An event counts in a 7-day window when it happened less than 7 days before now."""
    clock.set(T0 + 7 * DAY)
    for at in (T0, T0 + dt.timedelta(milliseconds=1), T0 + 7 * DAY):
        post(api, {"email": "pat@big.example", "event": "pricing_page_viewed",
                   "timestamp": iso(at)})

    def window() -> int:
        got = api.get("/v1/engagement", params={"email": "pat@big.example"},
                      headers=AUTH).json()
        return int(got["events"][0]["windows"]["7d"])

    assert window() == 2  # exactly 7 days ago is out, 1 ms less is in
    clock.set(T0 + 7 * DAY + dt.timedelta(milliseconds=1))
    assert window() == 1
    clock.set(T0 + 14 * DAY)
    assert window() == 0


def test_decay_is_exact_for_any_elapsed_time(api: httpx.Client, clock: FixedClock) -> None:
    decision = new_lead(api)
    lead_id = decision["lead_id"]
    r = post(api, {"lead_id": lead_id, "event": "demo_requested", "timestamp": iso(T0)})
    lead = r.json()["lead"]
    assert lead["outcome"] == "requalified" and lead["score"] == 55.0  # 25 + 30
    for elapsed, expected in ((dt.timedelta(days=14), 15.0), (dt.timedelta(days=28), 7.5),
                              (dt.timedelta(days=7), 30 * 2 ** -0.5),
                              (dt.timedelta(days=1, hours=3, minutes=7, seconds=11),
                               30 * 2 ** -(97631 / (14 * 86400))),
                              (dt.timedelta(days=3650), 30 * 2 ** (-3650 / 14))):
        clock.set(T0 + elapsed)
        got = api.get("/v1/engagement", params={"lead_id": lead_id}, headers=AUTH).json()
        (demo,) = got["contributions"]
        assert demo["decayed"] == round(expected, 4), elapsed
        assert demo["final"] == round(expected, 4)
        assert demo["raw"] == 30.0 and demo["count"] == 1 and not demo["capped"]
    # An event at T0 + 28d re-scores the lead: the demo is worth 7.5 then.
    clock.set(T0 + 28 * DAY)
    r = post(api, {"lead_id": lead_id, "event": "email_clicked", "timestamp": iso(clock.now)})
    assert r.json()["lead"]["score"] == 25 + 7.5 + 2.0


def test_caps(api: httpx.Client, clock: FixedClock) -> None:
    for i in range(4):  # 4 webinars today: 40 raw, capped at 25
        post(api, {"email": "pat@big.example", "event": "webinar_attended",
                   "timestamp": iso(T0), "messageId": f"w{i}"})
    got = api.get("/v1/engagement", params={"email": "pat@big.example"}, headers=AUTH).json()
    assert got["contributions"] == [{
        "event": "webinar_attended", "count": 4, "points": 10.0, "raw": 40.0, "decayed": 40.0,
        "cap": 25.0, "capped": True, "final": 25.0, "last_at": iso(T0)}]
    clock.set(T0 + 14 * DAY)  # 20 after decay: under the cap
    got = api.get("/v1/engagement", params={"email": "pat@big.example"}, headers=AUTH).json()
    assert got["contributions"][0]["final"] == 20.0 and not got["contributions"][0]["capped"]
    decision = new_lead(api)
    assert engagement_of(decision)["engagement:webinar_attended"]["reason"] == (
        "4 x 10 = 40 raw, 20 after decay (half-life 14d); cap 25 not reached")


# --- re-scoring and re-qualification ------------------------------------------------------------


def history(api: httpx.Client, lead_id: str) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = api.get(f"/v1/leads/{lead_id}").json()["history"]
    return got


def test_rise_routes_the_lead_and_starts_its_sla(api: httpx.Client, clock: FixedClock,
                                                 redis_client: redis.Redis) -> None:
    decision = new_lead(api)
    lead_id = decision["lead_id"]
    assert decision["status"] == "nurture" and decision["assignment"]["queue"] == "nurture"
    clock.set(T0 + dt.timedelta(minutes=5))
    r = post(api, {"lead_id": lead_id, "event": "demo_requested", "messageId": "d1"})
    lead = r.json()["lead"]
    assert lead["outcome"] == "requalified"
    assert (lead["previous_status"], lead["status"], lead["state"]) == ("nurture", "mql",
                                                                        "assigned")
    assert lead["pool"] == "rr" and lead["owner"] == "r1"
    assert lead["due_at"] == iso(T0 + dt.timedelta(minutes=65))  # sla-mql: 1h from now
    stored = api.get(f"/v1/leads/{lead_id}").json()
    assert stored["status"] == "mql" and stored["score"]["total"] == 55.0
    assert stored["assignment"]["owner"] == "r1" and stored["assignment"]["queue"] is None
    assert stored["sla"] == {"policy": "sla-mql", "due_at": lead["due_at"], "state": "pending"}
    requalified = history(api, lead_id)[-1]
    assert requalified["event"] == "requalified"
    assert requalified["detail"]["from"] == "nurture" and requalified["detail"]["to"] == "mql"
    assert requalified["detail"]["events"] == [
        {"event": "demo_requested", "at": iso(clock.now), "message_id": "d1"}]
    assert redis_client.zscore("lr:{lr}:queue:nurture", lead_id) is None
    assert redis_client.zscore("lr:{lr}:rep:r1:open", lead_id) is not None
    # Another event while r1 has it: the score moves, nobody else gets it.
    r = post(api, {"lead_id": lead_id, "event": "email_clicked"})
    assert r.json()["lead"]["outcome"] == "rescored"
    assert api.get(f"/v1/leads/{lead_id}").json()["assignment"]["owner"] == "r1"


def test_a_fall_reassigns_nothing_but_shows_the_new_score(api: httpx.Client,
                                                          clock: FixedClock) -> None:
    post(api, {"email": "pat@big.example", "event": "pricing_page_viewed",
               "timestamp": iso(T0 - DAY)})
    post(api, {"email": "pat@big.example", "event": "pricing_page_viewed",
               "timestamp": iso(T0)})
    post(api, {"email": "pat@big.example", "event": "email_clicked", "timestamp": iso(T0)})
    post(api, {"email": "pat@big.example", "event": "demo_requested",
               "timestamp": iso(T0 - 7 * DAY)})
    decision = new_lead(api)  # 25 + 10 (pricing) + 2 + 21.2132 (demo a week ago): mql
    assert decision["status"] == "mql", decision["score"]
    owner = decision["assignment"]["owner"]
    clock.set(T0 + 10 * DAY)  # pricing views out of the window, demo and click decayed
    r = post(api, {"email": "pat@big.example", "event": "page_viewed"})
    lead = r.json()["lead"]
    assert lead["outcome"] == "rescored"
    assert (lead["previous_status"], lead["status"]) == ("mql", "nurture")
    stored = api.get(f"/v1/leads/{decision['lead_id']}").json()
    assert stored["status"] == "nurture" and stored["assignment"]["owner"] == owner
    expected = 25 + 1 + round(2 * 2 ** (-10 / 14), 4) + round(30 * 2 ** (-17 / 14), 4)
    assert math.isclose(stored["score"]["total"], expected, abs_tol=1e-9)
    entry = history(api, decision["lead_id"])[-1]
    assert entry["event"] == "rescored" and entry["detail"]["to"] == "nurture"


def test_recycled_lead_requalifies(api: httpx.Client, clock: FixedClock) -> None:
    decision = new_lead(api)
    lead_id = decision["lead_id"]
    post(api, {"lead_id": lead_id, "event": "demo_requested", "messageId": "d1"})
    owner = api.get(f"/v1/leads/{lead_id}").json()["assignment"]["owner"]
    r = api.post(f"/v1/leads/{lead_id}/reject", json={"rep": owner, "reason": "not_ready"},
                 headers=AUTH)  # the admin token acts for the owner
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "nurture"
    clock.set(T0 + 3 * DAY)
    r = post(api, {"lead_id": lead_id, "event": "demo_requested", "messageId": "d2"})
    lead = r.json()["lead"]
    assert lead["outcome"] == "requalified", lead
    assert lead["previous_status"] == "nurture" and lead["state"] == "assigned"
    events = [h["event"] for h in history(api, lead_id)]
    assert events[-3:] == ["requalified", "recycled", "requalified"]


async def _burst(url: str, lead_id: str, n: int) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        replies = await asyncio.gather(*(
            client.post("/v1/events", json={"lead_id": lead_id, "event": "webinar_attended",
                                            "messageId": f"burst-{i}"}) for i in range(n)))
    return [r.json() for r in replies]


def test_a_burst_crossing_the_threshold_routes_exactly_once(
        start_service: Callable[..., Any], eng_rules: Path, clock: FixedClock,
        redis_client: redis.Redis) -> None:
    """Webinars are worth 10, capped at 25: the third makes the lead an MQL (25 + 25), none
    makes it an SQL. 25 of them at once: one handoff, one pick, one SLA clock."""
    server = start_service(clock=clock, rules_dir=str(eng_rules))
    with server.client() as api:
        lead_id = new_lead(api)["lead_id"]
    results = asyncio.run(_burst(server.url, lead_id, 25))
    outcomes = [r["lead"]["outcome"] for r in results]
    assert outcomes.count("requalified") == 1, outcomes
    with server.client() as api:
        hist = history(api, lead_id)
    assert [h["event"] for h in hist].count("requalified") == 1
    facts: list[tuple[bytes, dict[bytes, bytes]]] = redis_client.xrange(  # type: ignore[assignment]
        "lr:{lr}:sla:facts")
    handoffs = [f for _, f in facts if f[b"t"] == b"handoff"]
    assert len(handoffs) == 1
    # one pick: the rotation moved once and exactly one rep has it open
    opened = [rep for rep in ("r1", "r2", "r3")
              if redis_client.zscore(f"lr:{{lr}}:rep:{rep}:open", lead_id) is not None]
    assert len(opened) == 1
    assert int(redis_client.hget("lr:{lr}:pool:rr", f"n:{opened[0]}") or 0) == 1


def test_erasing_a_person_erases_their_engagement(api: httpx.Client) -> None:
    post(api, {"anonymousId": "v1", "event": "page_viewed"})
    post(api, {"type": "identify", "anonymousId": "v1", "traits": {"email": "pat@big.example"}})
    post(api, {"email": "pat@big.example", "event": "demo_requested"})
    r = api.delete("/v1/people/pat@big.example", headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["events"] == 2
    assert_problem(api.get("/v1/engagement", params={"email": "pat@big.example"},
                           headers=AUTH), 404)
    # the anonymous id no longer leads to the person
    assert post(api, {"anonymousId": "v1", "event": "page_viewed"}).json()["seq"] == 1


def test_engagement_shows_the_score_the_shipped_rules_give(
        start_service: Callable[..., Any]) -> None:
    # The shipped rules score engagement with windowed rules in the engagement group and have
    # no decay section: GET /v1/engagement answered score 0 while the lead's engagement was 30.
    # It now shows what the lead's decision adds up, rule by rule.
    shipped = Path(__file__).resolve().parents[2] / "rules"
    server = start_service(rules_dir=str(shipped))
    with server.client() as client:
        lead = client.post("/v1/leads", json={"email": "eng@bigco.example", "company": "BigCo"})
        assert lead.status_code == 201, lead.text
        lead_id = lead.json()["lead_id"]
        event = client.post("/v1/events", json={"email": "eng@bigco.example",
                                                 "event": "demo_requested"})
        assert event.status_code < 300, event.text
        decision = client.get(f"/v1/leads/{lead_id}", headers=AUTH).json()
        assert decision["score"]["engagement"] == 30
        got = client.get("/v1/engagement", params={"email": "eng@bigco.example"},
                         headers=AUTH).json()
        assert got["lead_id"] == lead_id
        assert got["half_life"] is None and got["contributions"] == []  # no decay section
        assert got["score"] == decision["score"]["engagement"] == 30
        assert [(c["rule"], c["points"]) for c in got["rules"]] == [("eng.demo", 30.0)]
        assert [c for c in decision["score"]["contributions"] if c["group"] == "engagement"] \
            == got["rules"]
