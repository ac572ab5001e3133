"""Outcomes and the funnel over real HTTP on real Valkey: a generated dataset of leads routed
through the API, accepted / contacted by their owners, outcomes posted in random order with
duplicates; GET /v1/funnel must equal what this test computes from its own data (counts and
means exactly, median / p90 within the histogram's resolution), whatever the order."""

from __future__ import annotations

import datetime as dt
import math
import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from _service import AUTH, assert_problem, lead

CHAIN = ("accepted", "contacted", "meeting", "opportunity", "won")
PAIRS = (("routed", "accepted"), ("accepted", "contacted"), ("contacted", "meeting"),
         ("meeting", "opportunity"), ("opportunity", "won"), ("routed", "lost"),
         ("routed", "won"))
RESOLUTION = 0.045


class FixedClock:
    """The app's clock: set by the test before each request."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


class Svc:
    def __init__(self, client: httpx.Client, clock: FixedClock) -> None:
        self.client, self.clock = client, clock

    def route(self, when: dt.datetime, **fields: Any) -> dict[str, Any]:
        self.clock.now = when
        response = self.client.post("/v1/leads", json=lead(**fields))
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def act(self, lead_id: str, action: str, rep: str, when: dt.datetime) -> None:
        self.clock.now = when
        response = self.client.post(f"/v1/leads/{lead_id}/{action}", json={"rep": rep},
                                    headers=AUTH)
        assert response.status_code == 200, response.text

    def outcome(self, lead_id: str, body: dict[str, Any]) -> httpx.Response:
        return self.client.post(f"/v1/leads/{lead_id}/outcome", json=body, headers=AUTH)

    def funnel(self, **params: str) -> dict[str, Any]:
        response = self.client.get("/v1/funnel", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def svc(start_service: Callable[..., Any]) -> Iterator[Svc]:
    start = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    clock = FixedClock(start - dt.timedelta(days=4))
    server = start_service(clock=clock, sla_poll_seconds=3600)
    with server.client() as client:
        yield Svc(client, clock)


def _iso(when: dt.datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


class Lead:
    """One generated lead: its groups, the stage times this test knows, what it reported."""

    def __init__(self, lead_id: str, groups: dict[str, str], routed: dt.datetime) -> None:
        self.id, self.groups = lead_id, groups
        self.times: dict[str, dt.datetime] = {"routed": routed}
        self.reported: set[str] = set()
        self.amount: tuple[Decimal, str] | None = None

    def furthest(self) -> int:
        known = [CHAIN.index(s) for s in (*self.times, *self.reported) if s in CHAIN]
        return max(known, default=-1)


def _generate(svc: Svc, rng: random.Random, n: int, base: dt.datetime
              ) -> tuple[list[Lead], list[tuple[str, dict[str, Any]]]]:
    leads: list[Lead] = []
    posts: list[tuple[str, dict[str, Any]]] = []
    for i in range(n):
        routed = base + dt.timedelta(days=i % 3, seconds=rng.randint(0, 80_000))
        campaign = rng.choice(["", "wrr", "ll"])
        decision = svc.route(routed, email=f"p{i}@gen.example", employees=rng.choice([50, 5000]),
                             budget=None, campaign=campaign or None)
        assert decision["status"] == "mql", decision  # notify-on-breach SLA: owners stay
        one = Lead(decision["lead_id"], {"pool": decision["assignment"]["pool"] or "(none)",
                                         "segment": decision["segment"]}, routed)
        owner = decision["assignment"]["owner"]
        leads.append(one)
        last = routed
        if owner and rng.random() < 0.85:
            last = one.times["accepted"] = last + dt.timedelta(seconds=rng.randint(60, 7200))
            svc.act(one.id, "accept", owner, last)
            if rng.random() < 0.75:
                last = one.times["contacted"] = last + dt.timedelta(
                    seconds=rng.randint(60, 86_400))
                svc.act(one.id, "contacted", owner, last)
        goal = rng.choice([None, "meeting", "opportunity", "won", "won", "lost"])
        path = [] if goal is None else ["meeting"] if goal == "meeting" else \
            ["meeting", "opportunity"] if goal in ("opportunity", "lost") else \
            ["meeting", "opportunity", "won"]
        if goal == "lost":
            path = [*path[:rng.randint(0, 2)], "lost"]
        for j, stage in enumerate(path):
            last = last + dt.timedelta(seconds=rng.randint(3600, 3 * 86_400))
            if j < len(path) - 1 and rng.random() < 0.25:
                continue  # never reported: implied by the later stage
            body: dict[str, Any] = {"stage": stage, "at": _iso(last),
                                    "outcome_id": f"o-{one.id}-{stage}"}
            if stage == "won":
                one.amount = (Decimal(rng.randint(1000, 90000)) + Decimal(rng.randint(0, 99))
                              / 100, rng.choice(["EUR", "USD"]))
                body.update(amount=str(one.amount[0]), currency=one.amount[1])
            if stage == "lost":
                body["reason"] = rng.choice(["price", "timing"])
            one.times[stage] = last
            one.reported.add(stage)
            posts.append((one.id, body))
    return leads, posts


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _expected(leads: list[Lead]) -> dict[str, dict[str, Any]]:
    """Per group: routed, reached per stage, durations per pair (seconds), won amounts."""
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "routed": 0, "reached": Counter(), "pairs": defaultdict(list), "won": Counter()})
    for one in leads:
        for key in (one.groups["pool"], "(all)"):
            g = out[key]
            g["routed"] += 1
            far = one.furthest()
            for s in CHAIN[:far + 1]:
                g["reached"][s] += 1
            if "lost" in one.reported:
                g["reached"]["lost"] += 1
            for a, b in PAIRS:
                if a in one.times and b in one.times:
                    g["pairs"][(a, b)].append((one.times[b] - one.times[a]).total_seconds())
            if one.amount is not None:
                g["won"][one.amount[1]] += one.amount[0]
    return out


def _check(group: dict[str, Any], want: dict[str, Any]) -> None:
    assert group["routed"] == want["routed"]
    for stage in (*CHAIN, "lost"):
        assert group["reached"][stage] == want["reached"][stage], (group["group"], stage)
    velocity = {(v["from_stage"], v["to_stage"]): v for v in group["velocity"]}
    assert set(velocity) == set(PAIRS)
    for pair in PAIRS:
        got, values = velocity[pair], want["pairs"].get(pair, [])
        assert got["count"] == len(values), (group["group"], pair)
        if not values:
            assert got["median_seconds"] is None
            continue
        assert got["mean_seconds"] == pytest.approx(statistics.fmean(values), abs=0.001)
        for q, key in ((0.5, "median_seconds"), (0.9, "p90_seconds")):
            exact = _quantile(values, q)
            assert abs(got[key] - exact) <= exact * RESOLUTION, (pair, key, got[key], exact)
    assert group["won_amount"] == {c: str(a.quantize(Decimal("0.01")))
                                   for c, a in sorted(want["won"].items())}
    conversion = {(c["from_stage"], c["to_stage"]): c for c in group["conversion"]}
    opp, won = want["reached"]["opportunity"], want["reached"]["won"]
    assert conversion[("opportunity", "won")]["rate"] == (won / opp if opp else None)
    for sales in group["sales_velocity"]:
        assert (sales["opportunities"], sales["won"]) == (opp, won)
        cycle = statistics.fmean(want["pairs"][("routed", "won")]) / 86_400
        assert sales["cycle_days"] == pytest.approx(cycle, abs=1e-4)


def test_funnel_counts_and_velocity_equal_the_generated_data_in_any_order(
        svc: Svc, redis_client: Any) -> None:
    rng = random.Random(19)
    base = svc.clock.now
    leads, posts = _generate(svc, rng, 150, base)
    deliveries = posts + rng.sample(posts, len(posts) // 4)  # a quarter twice
    rng.shuffle(deliveries)
    svc.clock.now = base + dt.timedelta(days=20)
    statuses = Counter()
    for lead_id, body in deliveries:
        response = svc.outcome(lead_id, body)
        assert response.status_code in (200, 201), response.text
        statuses[response.json()["status"]] += 1
    assert statuses["recorded"] == len(posts)
    assert statuses["duplicate"] == len(deliveries) - len(posts)

    days = {"since": base.date().isoformat(), "until": (base.date() + dt.timedelta(days=2))
            .isoformat()}
    report = svc.funnel(by="pool", **days)
    want = _expected(leads)
    assert all(len(want["(all)"]["pairs"][p]) >= 5 for p in PAIRS)  # the data covers them all
    assert len(want) >= 4 and len(want["(all)"]["won"]) == 2
    _check(report["total"], want["(all)"])
    assert {g["group"] for g in report["groups"]} == {k for k in want if k != "(all)"}
    for group in report["groups"]:
        _check(group, want[group["group"]])

    # The same outcomes again, in reverse and without their ids: nothing changes.
    for lead_id, body in reversed(posts):
        response = svc.outcome(lead_id, {k: v for k, v in body.items() if k != "outcome_id"})
        assert response.status_code == 200 and response.json()["status"] == "repeat"
    # The first report read the routed combinations and folded them (the days are past for
    # the service's clock: lua/funnel_fold.lua); now the same answer from the dimensions'
    # hashes.
    routed = [f"lr:{{lr}}:funnel:routed:{base.date() + dt.timedelta(days=i)}" for i in range(3)]
    assert [redis_client.exists(k) for k in routed] == [0, 0, 0]
    assert svc.funnel(by="pool", **days) == report
    by_segment = svc.funnel(by="segment", **days)
    assert by_segment["total"] == {**report["total"]}
    assert sum(g["routed"] for g in by_segment["groups"]) == len(leads)
    one_day = svc.funnel(by="pool", since=days["since"], until=days["since"])
    assert one_day["total"]["routed"] == sum(1 for x in leads if x.times["routed"].date()
                                             == base.date())


def test_the_lead_keeps_an_ordered_timeline_and_each_stage_counts_once(svc: Svc) -> None:
    base = svc.clock.now
    decision = svc.route(base, email="t@one.example")
    lead_id = decision["lead_id"]
    svc.clock.now = base + dt.timedelta(days=2)
    won = {"stage": "won", "at": _iso(base + dt.timedelta(days=1)), "amount": "100.50",
           "currency": "eur"}
    first = svc.outcome(lead_id, won)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["counted"] == ["accepted", "contacted", "meeting", "opportunity", "won"]
    assert list(body["stages"]) == ["won"] and body["currency"] == "EUR"
    meeting = svc.outcome(lead_id, {"stage": "meeting", "at": _iso(base + dt.timedelta(hours=5))})
    assert meeting.status_code == 201 and meeting.json()["counted"] == []
    assert list(meeting.json()["stages"]) == ["meeting", "won"]  # funnel order, not arrival
    again = svc.outcome(lead_id, {**won, "at": _iso(base + dt.timedelta(hours=30))})
    assert again.status_code == 200 and again.json()["status"] == "repeat"
    assert again.json()["stages"]["won"] == body["stages"]["won"]  # the first time stays
    total = svc.funnel(by="status", since=base.date().isoformat())["total"]
    assert total["reached"]["won"] == 1 and total["reached"]["opportunity"] == 1
    assert total["won_amount"] == {"EUR": "100.50"}
    metrics = svc.client.get("/metrics").text
    assert 'leadrouter_funnel_stage_total{stage="won"}' in metrics
    assert 'leadrouter_outcomes_total{result="repeat"}' in metrics


def test_outcomes_by_external_id_and_email(svc: Svc) -> None:
    base = svc.clock.now
    first = svc.route(base, email="same@person.example", external_id="crm-41")
    later = svc.route(base + dt.timedelta(hours=1), email="same@person.example",
                      external_id="crm-42")
    svc.clock.now = base + dt.timedelta(hours=2)
    by_ext = svc.client.post("/v1/outcomes", headers=AUTH,
                             json={"external_id": "crm-41", "stage": "meeting"})
    assert by_ext.status_code == 201, by_ext.text
    assert by_ext.json()["lead_id"] == first["lead_id"]
    by_email = svc.client.post("/v1/outcomes", headers=AUTH,
                               json={"email": "SAME@person.example", "stage": "lost",
                                     "reason": "budget"})
    assert by_email.status_code == 201, by_email.text
    assert by_email.json()["lead_id"] == later["lead_id"]  # the most recently routed
    assert by_email.json()["reason"] == "budget"


def test_unknown_leads_and_bad_outcomes_are_problems(svc: Svc) -> None:
    decision = svc.route(svc.clock.now, email="bad@input.example")
    lead_id = decision["lead_id"]
    missing = assert_problem(svc.outcome("no-such-lead", {"stage": "won"}), 404)
    assert "external_id" in missing["detail"]
    unknown_ext = svc.client.post("/v1/outcomes", headers=AUTH,
                                  json={"external_id": "nope", "stage": "won"})
    assert "external_id" in assert_problem(unknown_ext, 404)["detail"]
    stage = assert_problem(svc.outcome(lead_id, {"stage": "signed"}), 422)
    assert "accepted, contacted, meeting, opportunity, won, lost" in stage["detail"]
    for body, word in (({"stage": "won", "amount": "-5", "currency": "EUR"}, "non-negative"),
                       ({"stage": "won", "amount": "abc", "currency": "EUR"}, "decimal"),
                       ({"stage": "won", "amount": "1.23456", "currency": "EUR"}, "4 decimal"),
                       ({"stage": "won", "amount": "10", "currency": "EUX"}, "ISO 4217"),
                       ({"stage": "won", "currency": "EUR"}, "goes with"),
                       ({"stage": "won", "at": _iso(svc.clock.now + dt.timedelta(hours=1))},
                        "ahead"),
                       ({"stage": "won", "colour": "red"}, "colour")):
        problem = assert_problem(svc.outcome(lead_id, body), 422)
        assert word in problem["detail"], problem
    skew = svc.outcome(lead_id, {"stage": "meeting",
                                 "at": _iso(svc.clock.now + dt.timedelta(minutes=2))})
    assert skew.status_code == 201, skew.text  # within the allowed skew
    who = svc.client.post("/v1/outcomes", headers=AUTH, json={"stage": "won"})
    assert "external_id" in assert_problem(who, 422)["detail"]


def test_posting_outcomes_needs_the_outcomes_scope(svc: Svc) -> None:
    lead_id = svc.route(svc.clock.now, email="auth@scope.example")["lead_id"]
    assert_problem(svc.client.post(f"/v1/leads/{lead_id}/outcome", json={"stage": "won"}), 401)

    def key(scopes: list[str]) -> dict[str, str]:
        made = svc.client.post("/v1/admin/keys", headers=AUTH,
                               json={"source": "*", "scopes": scopes, "name": "crm"})
        assert made.status_code == 201, made.text
        return {"Authorization": f"Bearer {made.json()['key']}"}

    wrong = svc.client.post(f"/v1/leads/{lead_id}/outcome", json={"stage": "won"},
                            headers=key(["events"]))
    assert_problem(wrong, 403)
    right = svc.client.post(f"/v1/leads/{lead_id}/outcome", json={"stage": "won"},
                            headers=key(["outcomes"]))
    assert right.status_code == 201, right.text


def test_erasure_removes_the_outcomes(svc: Svc, redis_client: Any) -> None:
    lead_id = svc.route(svc.clock.now, email="erase@me.example")["lead_id"]
    assert svc.outcome(lead_id, {"stage": "won", "amount": "5", "currency": "USD",
                                 "outcome_id": "x1"}).status_code == 201
    assert redis_client.hget(f"lr:{{lr}}:lead:{lead_id}", "stg:won") is not None
    erased = svc.client.delete(f"/v1/leads/{lead_id}", headers=AUTH)
    assert erased.status_code == 200, erased.text
    assert redis_client.exists(f"lr:{{lr}}:lead:{lead_id}") == 0
    assert_problem(svc.outcome(lead_id, {"stage": "won", "outcome_id": "x1"}), 404)
    # The day's aggregates keep counts per group only: no lead id, no email.
    for key in redis_client.scan_iter("lr:{lr}:funnel:*"):
        fields = b" ".join(redis_client.hkeys(key))
        assert lead_id.encode() not in fields and b"erase@me" not in fields


def test_funnel_query_problems(svc: Svc) -> None:
    assert "segment, territory" in assert_problem(
        svc.client.get("/v1/funnel", params={"by": "colour"}), 422)["detail"]
    assert_problem(svc.client.get("/v1/funnel", params={"since": "2026-03-09",
                                                        "until": "2026-03-01"}), 422)
    assert_problem(svc.client.get("/v1/funnel", params={"since": "yesterday"}), 422)
    assert_problem(svc.client.get("/v1/funnel", params={"since": "2020-01-01",
                                                        "until": "2026-01-01"}), 422)
    empty = svc.funnel(by="owner", since="7d")
    assert empty["total"]["routed"] == 0 and empty["groups"] == []


def test_a_contacted_without_accept_reaches_both_first_stages_once(svc: Svc) -> None:
    base = svc.clock.now
    decision = svc.route(base, email="direct@contact.example")
    owner = decision["assignment"]["owner"]
    svc.act(decision["lead_id"], "contacted", owner, base + dt.timedelta(minutes=10))
    svc.act(decision["lead_id"], "contacted", owner, base + dt.timedelta(minutes=20))  # again
    repeat = svc.outcome(decision["lead_id"], {"stage": "contacted"})
    assert repeat.status_code == 200 and repeat.json()["status"] == "repeat", repeat.text
    total = svc.funnel(by="owner", since=base.date().isoformat())["total"]
    assert (total["reached"]["accepted"], total["reached"]["contacted"]) == (1, 1)
    velocity = {(v["from_stage"], v["to_stage"]): v for v in total["velocity"]}
    assert velocity[("routed", "accepted")]["count"] == 1
    assert velocity[("routed", "accepted")]["mean_seconds"] == 600.0
    assert velocity[("accepted", "contacted")]["median_seconds"] == 0.5  # below 1 s: bucket 0
