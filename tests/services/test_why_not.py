"""Why X, why not Y (router/services/why_not.py) over leads decided for real: the service
routes them through the commit script against real Valkey, with reps set away, out of office
or at their caps, and the derivation reads back what each pick recorded."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _service import AUTH, lead, write_rules

from router.services.rules import RulesManager
from router.services.why_not import WhyNot, derive, read_pick
from router.state import Store

pytestmark = pytest.mark.anyio

ROUTING = """\
territories:
  - {id: any, when: "true"}
segments:
  - {id: any, when: "true"}
pools:
  rr: {strategy: round_robin, members: [r1, r2, r3], working_hours: false}
  capped:
    strategy: round_robin
    members: [c1, c2]
    daily_cap: 1
    working_hours: false
    overflow: {pool: wrr}
  wrr:
    strategy: weighted_round_robin
    members: [{rep: w1, weight: 3}, {rep: w2, weight: 2}]
    working_hours: false
    overflow: {queue: spill}
  ll: {strategy: least_loaded, members: [r1, r3], working_hours: false}
  tiny:
    strategy: round_robin
    members: [w1]
    pool_daily_cap: 1
    working_hours: false
    overflow: {pool: rr}
assignment:
  - {id: to-tiny, when: 'campaign == "tiny"', pool: tiny}
  - {id: to-capped, when: 'campaign == "capped"', pool: capped}
  - {id: to-ll, when: 'campaign == "ll"', pool: ll}
  - {id: to-rr, when: "true", pool: rr}
"""


@pytest.fixture
def routed(tmp_path: Path, start_service: Callable[..., Any]) -> tuple[Any, RulesManager]:
    rules_dir = write_rules(tmp_path / "rules", {"routing.yaml": ROUTING})
    server = start_service(rules_dir=str(rules_dir))
    manager = RulesManager(rules_dir)
    manager.load_initial()
    return server, manager


def _post(client: Any, n: int, **fields: Any) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        r = client.post("/v1/leads", json=lead(email=f"p{i}.{fields.get('campaign', 'x')}"
                                                  f"@acme.example", **fields), headers=AUTH)
        assert r.status_code == 201, r.text
        out.append(r.json())
    return out


async def _why(store: Store, rules: RulesManager, decision: dict[str, Any],
               *, same_rules: bool = True) -> WhyNot:
    facts = await read_pick(store, decision["lead_id"])
    assert facts is not None
    assert decision["rules_version"] == rules.current.version
    return derive(facts, rules.current if same_rules else None,
                  dt.datetime.fromisoformat(decision["created_at"]))


async def test_out_of_office_and_away_reps_are_excluded_with_their_reason(
        store: Store, routed: tuple[Any, RulesManager]) -> None:
    server, rules = routed
    with server.client() as c:
        assert c.put("/v1/reps/r2", json={"status": "out_of_office",
                                          "until": "2030-01-01T09:00:00Z"},
                     headers=AUTH).status_code == 200
        assert c.put("/v1/reps/r3", json={"status": "away"}, headers=AUTH).status_code == 200
        first, second = _post(c, 2)
    why = await _why(store, rules, second)
    assert why.consistent is True and why.rules_known
    (pool,) = why.pools
    members = {m.rep: m for m in pool.members}
    assert members["r2"].excluded == "out of office until 2030-01-01 09:00 UTC"
    assert members["r3"].excluded == "away"
    assert members["r1"].excluded is None and members["r1"].picked
    assert second["assignment"]["owner"] == first["assignment"]["owner"] == "r1"
    assert members["r1"].why.startswith("picked by round_robin")
    assert pool.pointer == "last picked r1: the rotation starts at r2"
    # The same lead without its rules: the recorded availability still shows, hours/caps not.
    bare = await _why(store, rules, second, same_rules=False)
    assert not bare.rules_known and bare.consistent is None
    bare_members = {m.rep: m for m in bare.pools[0].members}
    assert bare_members["r2"].excluded == "out of office until 2030-01-01 09:00 UTC"
    assert bare_members["r1"].in_hours is None and bare_members["r1"].cap is None


async def test_round_robin_says_who_was_next(store: Store,
                                             routed: tuple[Any, RulesManager]) -> None:
    server, rules = routed
    with server.client() as c:
        decisions = _post(c, 3)
    owners = [d["assignment"]["owner"] for d in decisions]
    assert owners == ["r1", "r2", "r3"]
    why = await _why(store, rules, decisions[2])
    members = {m.rep: m for m in why.pools[0].members}
    assert members["r3"].picked and "1. in the rotation" in members["r3"].why
    assert members["r1"].why == "not picked: later in the rotation than r3 (2. in the rotation)"
    assert why.consistent is True


async def test_caps_overflow_to_the_next_pool_with_weights(
        store: Store, routed: tuple[Any, RulesManager]) -> None:
    server, rules = routed
    with server.client() as c:
        decisions = _post(c, 4, campaign="capped")
    assert [d["assignment"]["owner"] for d in decisions] == ["c1", "c2", "w1", "w2"]
    why = await _why(store, rules, decisions[3])
    capped, wrr = why.pools
    assert {m.rep: m.excluded for m in capped.members} == {
        "c1": "at daily cap (1/1)", "c2": "at daily cap (1/1)"}
    assert capped.outcome == "nobody eligible"
    assert wrr.outcome == "picked w2" and why.pool == "wrr"
    w = {m.rep: m for m in wrr.members}
    assert w["w1"].weight == 3 and w["w2"].weight == 2
    # after w1's pick its credit went to 3 - 5 = -2; now w1: -2 + 3 = 1, w2: 2 + 2 = 4
    assert w["w2"].why == "picked by weighted_round_robin: credit 4 (weight 2), 0 assigned here"
    assert w["w1"].why.startswith("not picked: less round-robin credit than w2 (credit 1")
    assert why.consistent is True


async def test_least_loaded_names_the_open_leads(store: Store,
                                                 routed: tuple[Any, RulesManager]) -> None:
    server, rules = routed
    with server.client() as c:
        decisions = _post(c, 2, campaign="ll")
        lead_id = decisions[0]["lead_id"]
        owner = decisions[0]["assignment"]["owner"]
        # the first owner accepts: its lead is no longer open
        assert c.post(f"/v1/leads/{lead_id}/accept", json={"rep": owner},
                      headers=AUTH).status_code == 200
        third = _post(c, 1, campaign="ll", first_name="Third")[0]
    why = await _why(store, rules, decisions[1])
    members = {m.rep: m for m in why.pools[0].members}
    other = decisions[1]["assignment"]["owner"]
    assert owner != other
    assert members[owner].why.startswith(f"not picked: more open leads than {other} (1 open")
    assert members[other].why.startswith("picked by least_loaded: 0 open lead(s)")
    again = await _why(store, rules, third)
    assert again.consistent is True and again.owner == owner


async def test_a_pool_at_its_daily_cap_overflows(store: Store,
                                                 routed: tuple[Any, RulesManager]) -> None:
    server, rules = routed
    with server.client() as c:
        decisions = _post(c, 2, campaign="tiny")
    assert [d["assignment"]["pool"] for d in decisions] == ["tiny", "rr"]
    why = await _why(store, rules, decisions[1])
    tiny, rr = why.pools
    assert tiny.outcome == "at its pool daily cap (1/1)" and tiny.members == []
    assert rr.outcome == "picked r1" and why.consistent is True
