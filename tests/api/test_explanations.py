"""After the commit a lead moves on (a reject, an SLA escalation, a re-route, an engagement
re-qualification): ``GET /v1/leads/{id}`` must then explain where the lead is NOW — the
assignment's reason and the explanation's assignment / qualification steps describe the current
owner, queue and status — while the history keeps every earlier reason. The real service over
HTTP on real Valkey, with its SLA worker running on a clock the test moves
(router/services/records.py ``from_stored``, router/state/lua/_sla.lua ``explain_move``)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _service import AUTH, write_rules

T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)

# mql (55: big + budget) goes to rr, sql (85: + a demo) to the `west` pool, nurture to a queue.
RULES = {
    "scoring.yaml": """\
scoring:
  fit:
    - {id: fit.big, when: "employees >= 1000", points: 25}
    - {id: fit.budget, when: "budget >= 10000", points: 30}
engagement:
  half_life: 14d
  events:
    demo_requested: {points: 30}
grades: {A: 80, B: 50, D: 0}
qualification:
  - {id: q.sql, status: sql, when: "score >= 80"}
  - {id: q.mql, status: mql, when: "score >= 50"}
  - {id: q.nurture, status: nurture, when: "true"}
""",
    "routing.yaml": """\
pools:
  rr: {strategy: round_robin, members: [r1, r2, r3], working_hours: false}
  west: {strategy: round_robin, members: [w1], working_hours: false}
assignment:
  - {id: to-nurture, when: 'status == "nurture"', queue: nurture}
  - {id: sql-to-west, when: 'status == "sql"', pool: west}
  - {id: to-rr, when: "true", pool: rr}
""",
    "sla.yaml": """\
sla:
  - {id: sla-repick, when: 'campaign == "repick"', accept_within: 5m, on_breach: reassign,
     max_reassignments: 1, final: {queue: sales-managers}}
  - {id: sla-fast, when: "true", accept_within: 5m, on_breach: {queue: sales-managers}}
""",
}


class FixedClock:
    """The service's clock (and its SLA worker's): stands still until the test moves it."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def api(start_service: Callable[..., Any], tmp_path: Path,
        clock: FixedClock) -> Iterator[httpx.Client]:
    rules = write_rules(tmp_path / "rules", RULES)
    server = start_service(clock=clock, rules_dir=str(rules), sla_poll_seconds=0.05,
                           require_rules_tests=False)
    with server.client() as client:
        yield client


def routed(api: httpx.Client, email: str, **fields: Any) -> dict[str, Any]:
    made = api.post("/v1/leads", json={"email": email, "employees": 5000, "budget": 50000,
                                       **fields})
    assert made.status_code == 201, made.text
    decision: dict[str, Any] = made.json()
    assert decision["status"] == "mql" and decision["assignment"]["pool"] == "rr", decision
    assert decision["assignment"]["reason"] == "picked by round_robin"
    return decision


def step(decision: dict[str, Any], stage: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [s for s in decision["explanation"] if s["stage"] == stage]
    assert len(found) == 1, (stage, decision["explanation"])
    return found[0]


def got(api: httpx.Client, lead_id: str) -> dict[str, Any]:
    r = api.get(f"/v1/leads/{lead_id}")
    assert r.status_code == 200, r.text
    decision: dict[str, Any] = r.json()
    return decision


def events(decision: dict[str, Any]) -> list[str]:
    return [h["event"] for h in decision["history"]]


def first_assignment_kept(decision: dict[str, Any], owner: str) -> None:
    """The history still has the commit's assignment with its own reason."""
    assigned = next(h for h in decision["history"] if h["event"] == "assigned")
    assert assigned["detail"]["owner"] == owner
    assert assigned["detail"]["reason"] == "picked by round_robin"


def wait_for(api: httpx.Client, lead_id: str, event: str, count: int = 1) -> dict[str, Any]:
    """GET the lead until its history has ``count`` ``event`` entries (the SLA worker polls
    every 50 ms on the moved clock)."""
    deadline = time.monotonic() + 15
    while True:
        decision = got(api, lead_id)
        if events(decision).count(event) >= count:
            return decision
        assert time.monotonic() < deadline, events(decision)
        time.sleep(0.05)


def test_a_reject_explains_the_nurture_status_and_queue(api: httpx.Client) -> None:
    lead = routed(api, "rejected@acme.example")
    lead_id, owner = lead["lead_id"], lead["assignment"]["owner"]
    r = api.post(f"/v1/leads/{lead_id}/reject", headers=AUTH,
                 json={"rep": owner, "reason": "no_budget"})
    assert r.status_code == 200, r.text

    now = got(api, lead_id)
    assert r.json()["explanation"] == now["explanation"]  # the action answers the same
    why = f"rejected by {owner}: no_budget → nurture (queue marketing-nurture)"
    assert now["status"] == "nurture"
    assert now["assignment"]["owner"] is None
    assert now["assignment"]["queue"] == "marketing-nurture"
    assert now["assignment"]["reason"] == why
    assert step(now, "assignment") == {"stage": "assignment",
                                       "outcome": "queue:marketing-nurture", "detail": why}
    assert step(now, "qualification") == {"stage": "qualification", "outcome": "nurture",
                                          "detail": why}
    # what the commit explained is history, with its reason
    first_assignment_kept(now, owner)
    assert now["history"][-1]["event"] == "recycled"
    assert now["history"][-1]["detail"]["reason"] == "no_budget"
    # the other steps are the decision's own
    assert step(now, "scoring") == step(lead, "scoring")

    # A demo request re-qualifies the recycled lead (55 + 30: sql → west): routed like a new
    # lead, the new decision explains it again, nothing of the reject is left but history.
    ev = api.post("/v1/events", json={"email": "rejected@acme.example",
                                      "event": "demo_requested",
                                      "timestamp": T0.isoformat().replace("+00:00", "Z")})
    assert ev.status_code == 202, ev.text
    assert ev.json()["lead"]["outcome"] == "requalified", ev.json()
    again = got(api, lead_id)
    assert (again["status"], again["assignment"]["owner"]) == ("sql", "w1")
    assert again["assignment"]["reason"] == "picked by round_robin"
    assert step(again, "assignment") == {
        "stage": "assignment", "outcome": "pool:west", "rule": "sql-to-west",
        "detail": "first match; 1 earlier rule did not match"}
    assert step(again, "qualification")["outcome"] == "sql"
    assert step(again, "qualification")["rule"] == "q.sql"
    assert events(again)[-2:] == ["recycled", "requalified"]


def test_a_reroute_explains_the_new_owner(api: httpx.Client) -> None:
    lead = routed(api, "moved@acme.example")
    lead_id, owner = lead["lead_id"], lead["assignment"]["owner"]
    r = api.post(f"/v1/leads/{lead_id}/reject", headers=AUTH,
                 json={"rep": owner, "reason": "wrong_territory", "pool": "west"})
    assert r.status_code == 200, r.text

    now = got(api, lead_id)
    why = (f"rejected by {owner}: wrong_territory → rerouted to w1 in west; "
           "picked by round_robin")
    assert (now["status"], now["assignment"]["owner"], now["assignment"]["pool"]) == \
        ("mql", "w1", "west")
    assert now["assignment"]["reason"] == why
    assert step(now, "assignment") == {"stage": "assignment", "outcome": "pool:west",
                                       "detail": why}
    assert step(now, "qualification") == step(lead, "qualification")  # status unchanged
    first_assignment_kept(now, owner)
    assert now["history"][-1]["event"] == "rerouted"

    # w1 rejects it too, without a pool: to the reroute queue, and that is what it says
    back = api.post(f"/v1/leads/{lead_id}/reject", headers=AUTH,
                    json={"rep": "w1", "reason": "wrong_territory"})
    assert back.status_code == 200, back.text
    now = got(api, lead_id)
    why = "rejected by w1: wrong_territory → rerouted to queue unassigned"
    assert (now["assignment"]["owner"], now["assignment"]["queue"]) == (None, "unassigned")
    assert now["assignment"]["reason"] == why
    assert step(now, "assignment") == {"stage": "assignment", "outcome": "queue:unassigned",
                                       "detail": why}
    # both earlier moves stay in the history with their own reasons
    assert [h["detail"].get("owner") for h in now["history"]
            if h["event"] in ("assigned", "rerouted")] == [owner, "w1", None]


def test_an_sla_escalation_explains_the_queue_it_moved_to(api: httpx.Client,
                                                          clock: FixedClock) -> None:
    lead = routed(api, "slow@acme.example")
    lead_id, owner = lead["lead_id"], lead["assignment"]["owner"]
    assert lead["sla"]["policy"] == "sla-fast"
    clock.advance(minutes=6)
    now = wait_for(api, lead_id, "requeued")

    why = f"escalated to queue sales-managers after SLA breach of sla-fast by rep {owner}"
    assert (now["assignment"]["owner"], now["assignment"]["queue"]) == (None, "sales-managers")
    assert now["assignment"]["reason"] == why
    assert step(now, "assignment") == {"stage": "assignment", "outcome": "queue:sales-managers",
                                       "rule": "sla-fast", "detail": why}
    assert now["status"] == "mql" and step(now, "qualification") == step(lead, "qualification")
    first_assignment_kept(now, owner)
    assert events(now)[-2:] == ["breached", "requeued"]

    # a manager takes it from the queue: that is why it is theirs now
    taken = api.post(f"/v1/leads/{lead_id}/accept", headers=AUTH, json={"rep": "r3"})
    assert taken.status_code == 200, taken.text
    now = got(api, lead_id)
    why = "taken from queue sales-managers by rep r3"
    assert (now["assignment"]["owner"], now["assignment"]["queue"]) == ("r3", None)
    assert now["assignment"]["reason"] == why
    assert step(now, "assignment") == {"stage": "assignment", "outcome": "owner:r3",
                                       "detail": why}
    assert [h["detail"].get("reason") for h in now["history"]
            if h["event"] in ("assigned", "requeued")] == [
        "picked by round_robin", "SLA sla-fast breached: moved to queue sales-managers"]


def test_an_sla_reassignment_then_its_final_queue_explain_themselves(
        api: httpx.Client, clock: FixedClock) -> None:
    lead = routed(api, "repick@acme.example", campaign="repick")
    lead_id, first = lead["lead_id"], lead["assignment"]["owner"]
    clock.advance(minutes=6)
    now = wait_for(api, lead_id, "reassigned")
    second = now["assignment"]["owner"]
    assert second not in (None, first)
    why = (f"reassigned to {second} in rr after SLA breach of sla-repick by rep {first}; "
           "picked by round_robin")
    assert now["assignment"]["reason"] == why
    assert step(now, "assignment") == {"stage": "assignment", "outcome": "pool:rr",
                                       "rule": "sla-repick", "detail": why}

    clock.advance(minutes=6)  # the new owner misses it too: the final action, a queue
    now = wait_for(api, lead_id, "requeued")
    why = f"escalated to queue sales-managers after SLA breach of sla-repick by rep {second}"
    assert now["assignment"]["reason"] == why
    assert step(now, "assignment")["outcome"] == "queue:sales-managers"
    first_assignment_kept(now, first)
    reassigned = next(h for h in now["history"] if h["event"] == "reassigned")
    assert reassigned["detail"]["owner"] == second
    assert reassigned["detail"]["reason"] == "picked by round_robin"


def test_a_requalified_lead_its_rep_keeps_explains_the_assignment_it_has(
        api: httpx.Client) -> None:
    lead = routed(api, "hot@acme.example")
    lead_id, owner = lead["lead_id"], lead["assignment"]["owner"]
    ev = api.post("/v1/events", json={"email": "hot@acme.example", "event": "demo_requested",
                                      "timestamp": T0.isoformat().replace("+00:00", "Z")})
    assert ev.status_code == 202, ev.text
    assert ev.json()["lead"]["outcome"] == "requalified", ev.json()

    now = got(api, lead_id)
    # sql now (a new lead would go to west), but the rep working it keeps it: the assignment
    # step is still the one that put it in rr, saying so; the status step is the new one.
    assert (now["status"], now["assignment"]["owner"], now["assignment"]["pool"]) == \
        ("sql", owner, "rr")
    assert now["assignment"]["reason"] == "picked by round_robin"
    kept = step(now, "assignment")
    assert (kept["outcome"], kept["rule"]) == ("pool:rr", "to-rr")
    assert kept["detail"] == ("first match; 2 earlier rules did not match; kept when "
                              "re-scored (a new lead would now go to pool:west)")
    assert (step(now, "qualification")["outcome"], step(now, "qualification")["rule"]) == \
        ("sql", "q.sql")
    first_assignment_kept(now, owner)
    assert events(now)[-1] == "requalified"
