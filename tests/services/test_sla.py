"""The handoff SLA against real Valkey, on a controllable clock: owner actions, breach
escalation (reassign, chain to final, pool, queue, nurture, notify), business hours, exactly-once
claims, lease take-over, the report. The real service over HTTP: tests/api/test_sla.py."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
import redis
from _rules import SLA_SCORING, sla_reps
from leadrouter_sdk import Decision, decode_lead

from router.engine.ruleset import Ruleset
from router.services.leads import LeadService
from router.services.rules import RulesManager
from router.services.sla import (
    Action,
    Conflict,
    SlaService,
    UnknownPool,
    UnknownReason,
    breach_move,
    build_report,
)
from router.settings import Settings
from router.state import Store
from router.state.sla import Fact, SlaLead

pytestmark = pytest.mark.anyio

NY = ZoneInfo("America/New_York")
T0 = dt.datetime(2026, 3, 4, 15, 0, tzinfo=dt.UTC)  # a Wednesday

RULES = {
    "scoring.yaml": SLA_SCORING,
    "reps.yaml": sla_reps("r1", "r2", "r3", "x1", "owner1"),
    "routing.yaml": """\
territories:
  - {id: us, when: 'country == "US"'}
  - {id: other, when: "true"}
segments:
  - {id: smb, when: "true"}
pools:
  rr: {strategy: round_robin, members: [r1, r2, r3], working_hours: false}
  alt: {strategy: round_robin, members: [x1], working_hours: false}
  ny: {strategy: round_robin, members: [ny1, ny2], working_hours: false}
assignment:
  - {id: account-owner, when: 'account_owner != null', assign: account_owner}
  - {id: to-ny, when: 'campaign == "ny"', pool: ny}
  - {id: to-triage, when: 'campaign == "triage"', queue: triage}
  - {id: to-rr, when: "true", pool: rr}
""",
    "sla.yaml": """\
sla:
  - {id: sla-ny, when: 'campaign == "ny"', accept_within: 2h, clock: business,
     on_breach: reassign, max_reassignments: 1, final: nurture}
  - {id: sla-nurture, when: 'campaign == "n"', accept_within: 5m, on_breach: nurture}
  - {id: sla-move, when: 'campaign == "move"', accept_within: 5m, on_breach: {pool: alt}}
  - {id: sla-notify, when: 'campaign in ["notify", "triage"]', accept_within: 5m,
     on_breach: notify}
  - {id: sla-hot, when: "true", accept_within: 10m, clock: wall, on_breach: reassign,
     max_reassignments: 2, final: {queue: managers}}
""",
}


def write_rules(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


class World:
    """The lead and SLA services over one Store, on one clock."""

    def __init__(self, store: Store, rules: RulesManager, clock: Clock,
                 settings: Settings) -> None:
        self.store, self.rules, self.clock = store, rules, clock
        self.leads = LeadService(store=store, rules=rules, settings=settings, clock=clock)
        self.sla = SlaService(store=store, rules=rules, settings=settings, clock=clock)

    @property
    def ruleset(self) -> Ruleset:
        return self.rules.current

    async def route(self, **fields: Any) -> Decision:
        body = json.dumps({"email": "jane@acme.example", "country": "US", **fields}).encode()
        outcome, decision, _ = await self.leads.route(decode_lead(body), body=body)
        assert outcome == "created" and decision is not None
        return decision

    async def get(self, lead_id: str) -> Decision:
        decision = await self.leads.get(lead_id)
        assert decision is not None
        return decision

    async def breach_all(self) -> int:
        """Tick until nothing is due."""
        total = 0
        while n := await self.sla.tick():
            total += n
        return total


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> RulesManager:
    directory = write_rules(tmp_path_factory.mktemp("sla") / "rules", RULES)
    manager = RulesManager(directory, require_tests=False)
    manager.load_initial()
    return manager


@pytest.fixture
def world(store: Store, rules: RulesManager) -> World:
    return World(store, rules, Clock(T0), Settings(sla_batch=50))


def stream(client: redis.Redis, key: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """XRANGE of ``key`` with the types redis-py does not state."""
    return cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(key))


def events(decision: Decision) -> list[str]:
    return [h.event for h in decision.history]


async def report(w: World) -> Any:
    return await w.sla.report(T0 - dt.timedelta(days=1), w.clock.now + dt.timedelta(days=1))


# -- owner actions -----------------------------------------------------------------------------


async def test_accept_in_time_stops_the_clock(world: World) -> None:
    d = await world.route()
    assert d.assignment.owner == "r1" and d.sla.policy == "sla-hot"
    assert d.sla.due_at == T0 + dt.timedelta(minutes=10)
    world.clock.advance(minutes=4)
    after = await world.sla.act(d.lead_id, "accept", rep="r1", note="calling now")
    assert after.sla.state == "met"
    assert events(after)[-1] == "accepted"
    assert after.history[-1].detail["note"] == "calling now"
    again = await world.sla.act(d.lead_id, "accept", rep="r1")  # harmless repeat
    assert events(again) == events(after)
    world.clock.advance(hours=1)
    assert await world.breach_all() == 0
    assert (await world.get(d.lead_id)).assignment.owner == "r1"
    total = (await report(world)).total
    assert (total.handed_off, total.accepted, total.accepted_in_time, total.breached) == \
        (1, 1, 1, 0)
    assert total.time_to_accept.median_seconds == 240
    contacted = await world.sla.act(d.lead_id, "contacted", rep="r1")
    assert contacted.sla.state == "met" and events(contacted)[-1] == "contacted"
    assert (await report(world)).total.accepted == 1  # the first stop of the clock counts


async def test_stale_owner_conflict(world: World) -> None:
    d = await world.route()
    with pytest.raises(Conflict) as info:
        await world.sla.act(d.lead_id, "accept", rep="r2")
    assert info.value.owner == "r1"
    world.clock.advance(minutes=11)
    assert await world.breach_all() == 1
    assert (await world.get(d.lead_id)).assignment.owner == "r2"
    actions: tuple[Action, ...] = ("accept", "contacted", "reject")
    for action in actions:
        with pytest.raises(Conflict):  # the previous owner is too late
            await world.sla.act(d.lead_id, action, rep="r1", reason="bad_fit")
    await world.sla.act(d.lead_id, "accept", rep="r2")
    with pytest.raises(Conflict):
        await world.sla.act(d.lead_id, "accept", rep="r1")


async def test_reject_recycles_to_nurture_and_is_reported(world: World,
                                                          redis_client: redis.Redis,
                                                          outbox_sink: str) -> None:
    d = await world.route()
    with pytest.raises(UnknownReason) as info:
        await world.sla.act(d.lead_id, "reject", rep="r1", reason="too_expensive")
    assert "no_budget" in info.value.allowed and "wrong_territory" in info.value.allowed
    world.clock.advance(minutes=2)
    after = await world.sla.act(d.lead_id, "reject", rep="r1", reason="no_budget",
                                note="next fiscal year")
    assert after.status == "nurture" and after.assignment.owner is None
    assert after.assignment.queue == "marketing-nurture"
    assert after.history[-1].event == "recycled"
    assert after.history[-1].detail["reason"] == "no_budget"
    assert after.history[-1].detail["by"] == "r1"
    assert after.history[-1].detail["note"] == "next fiscal year"
    assert redis_client.zscore("lr:{lr}:queue:marketing-nurture", d.lead_id) is not None
    assert redis_client.zscore("lr:{lr}:rep:r1:open", d.lead_id) is None
    assert redis_client.zscore("lr:{lr}:sla:due", d.lead_id) is None
    world.clock.advance(hours=1)
    assert await world.breach_all() == 0
    with pytest.raises(Conflict):
        await world.sla.act(d.lead_id, "accept", rep="r1")
    total = (await report(world)).total
    assert total.recycled == 1 and total.recycled_by_reason == {"no_budget": 1}
    types = [f[b"type"] for _, f in stream(redis_client, "lr:{lr}:outbox")]
    assert types == [b"lead.assigned", b"lead.recycled"]


async def test_wrong_territory_reroutes(world: World) -> None:
    d = await world.route()
    with pytest.raises(UnknownPool):
        await world.sla.act(d.lead_id, "reject", rep="r1", reason="wrong_territory",
                            pool="nowhere")
    moved = await world.sla.act(d.lead_id, "reject", rep="r1", reason="wrong_territory",
                                pool="alt")
    assert moved.assignment.owner == "x1" and moved.assignment.pool == "alt"
    assert moved.sla.state == "pending"
    assert moved.sla.due_at == world.clock.now + dt.timedelta(minutes=10)
    assert events(moved)[-1] == "rerouted"
    queued = await world.sla.act(d.lead_id, "reject", rep="x1", reason="wrong_territory")
    assert queued.assignment.queue == "unassigned" and queued.assignment.owner is None
    assert (await report(world)).total.recycled_by_reason == {"wrong_territory": 2}


async def test_a_rep_takes_a_queued_lead_by_accepting_it(world: World) -> None:
    d = await world.route(campaign="triage")
    assert d.assignment.queue == "triage" and d.sla.policy == "sla-notify"
    world.clock.advance(minutes=1)
    taken = await world.sla.act(d.lead_id, "accept", rep="r3")
    assert taken.assignment.owner == "r3" and taken.assignment.queue is None
    assert taken.sla.state == "met"
    with pytest.raises(Conflict):
        await world.sla.act(d.lead_id, "accept", rep="r2")


# -- breaches ----------------------------------------------------------------------------------


async def test_breach_reassigns_to_another_rep(world: World, redis_client: redis.Redis,
                                               outbox_sink: str) -> None:
    d = await world.route()
    world.clock.advance(minutes=9, seconds=59)
    assert await world.breach_all() == 0
    now = world.clock.advance(seconds=1)
    assert await world.breach_all() == 1
    after = await world.get(d.lead_id)
    assert after.assignment.owner == "r2" and after.assignment.pool == "rr"
    assert after.sla.due_at == now + dt.timedelta(minutes=10)
    assert after.sla.state == "pending"
    assert events(after)[-2:] == ["breached", "reassigned"]
    breach = after.history[-2].detail
    assert breach["owner"] == "r1" and breach["action"] == "reassign"
    assert after.history[-1].detail["from"] == "r1"
    # counts moved to the new owner; the old owner's open set no longer holds it
    assert redis_client.zscore("lr:{lr}:rep:r1:open", d.lead_id) is None
    assert redis_client.zscore("lr:{lr}:rep:r2:open", d.lead_id) is not None
    types = [f[b"type"] for _, f in stream(redis_client, "lr:{lr}:outbox")]
    assert types == [b"lead.assigned", b"lead.breached", b"lead.reassigned"]
    last = stream(redis_client, "lr:{lr}:outbox")[-1][1]
    assert last[b"owner"] == b"r2" and json.loads(last[b"decision"])["status"]
    r = await report(world)
    assert (r.total.breached, r.total.reassigned) == (1, 1)
    assert r.by_pool["rr"].reassigned == 1 and r.by_policy["sla-hot"].breached == 1
    # the new owner accepts within the new deadline: in time
    world.clock.advance(minutes=3)
    await world.sla.act(d.lead_id, "accept", rep="r2")
    r = await report(world)
    assert (r.total.accepted_in_time, r.total.time_to_accept.median_seconds) == (1, 780)


async def test_chain_runs_to_max_reassignments_then_final(world: World) -> None:
    d = await world.route()
    owners = [d.assignment.owner]
    for _ in range(2):
        world.clock.advance(minutes=10)
        assert await world.breach_all() == 1
        owners.append((await world.get(d.lead_id)).assignment.owner)
    assert owners == ["r1", "r2", "r3"]
    world.clock.advance(minutes=10)
    assert await world.breach_all() == 1
    final = await world.get(d.lead_id)
    assert final.assignment.owner is None and final.assignment.queue == "managers"
    assert final.sla.state == "breached"
    assert events(final)[-2:] == ["breached", "requeued"]
    world.clock.advance(hours=5)
    assert await world.breach_all() == 0
    r = await report(world)
    assert r.total.breached == 3 and r.total.reassigned == 2
    assert r.total.breach_actions == {"reassign": 2, "final:queue:managers": 1}


async def test_no_eligible_rep_left_goes_to_the_pools_queue(world: World) -> None:
    await world.store.put_rep("r2", "away")
    await world.store.put_rep("r3", "away")
    d = await world.route()
    world.clock.advance(minutes=10)
    assert await world.breach_all() == 1
    after = await world.get(d.lead_id)
    assert after.assignment.owner is None and after.assignment.queue == "unassigned"
    assert "earlier owner" in after.history[-1].detail["reason"]


async def test_other_breach_actions(world: World) -> None:
    moved = await world.route(campaign="move")
    nurtured = await world.route(campaign="n")
    notified = await world.route(campaign="notify")
    world.clock.advance(minutes=5)
    assert await world.breach_all() == 3
    m = await world.get(moved.lead_id)
    assert (m.assignment.owner, m.assignment.pool) == ("x1", "alt")
    n = await world.get(nurtured.lead_id)
    assert n.status == "nurture" and n.assignment.queue == "marketing-nurture"
    assert events(n)[-2:] == ["breached", "recycled"]
    k = await world.get(notified.lead_id)
    assert k.assignment.owner == notified.assignment.owner and k.sla.state == "breached"
    # a late accept still counts, as late
    await world.sla.act(notified.lead_id, "accept", rep=k.assignment.owner or "")
    assert (await world.get(notified.lead_id)).sla.state == "breached"
    # the pool move counted as the one reassignment: the next breach is final (notify)
    world.clock.advance(minutes=5)
    assert await world.breach_all() == 1
    assert (await world.get(moved.lead_id)).history[-1].detail["action"] == "final:notify"
    r = await report(world)
    assert r.total.recycled_by_reason == {"sla_breach": 1}
    assert r.total.accepted_late == 1
    assert r.by_policy["sla-move"].breach_actions == {"pool:alt": 1, "final:notify": 1}


async def test_business_hours_friday_evening_is_due_monday_morning(world: World) -> None:
    # Friday 2026-03-06 18:30 in New York (EST); the clocks go forward on Sunday the 8th.
    world.clock.now = dt.datetime(2026, 3, 6, 18, 30, tzinfo=NY).astimezone(dt.UTC)
    d = await world.route(campaign="ny")
    assert d.assignment.owner == "ny1"
    due = d.sla.due_at
    assert due is not None
    assert due.astimezone(NY) == dt.datetime(2026, 3, 9, 11, 0, tzinfo=NY)  # Monday, EDT
    world.clock.now = due - dt.timedelta(seconds=1)
    assert await world.breach_all() == 0
    world.clock.now = due
    assert await world.breach_all() == 1
    after = await world.get(d.lead_id)
    assert after.assignment.owner == "ny2"
    assert after.sla.due_at == dt.datetime(2026, 3, 9, 13, 0, tzinfo=NY)
    world.clock.now = dt.datetime(2026, 3, 9, 13, 0, tzinfo=NY).astimezone(dt.UTC)
    assert await world.breach_all() == 1
    final = await world.get(d.lead_id)  # max_reassignments 1, final: nurture
    assert final.status == "nurture" and final.history[-2].detail["action"] == "final:nurture"


# -- exactly once ------------------------------------------------------------------------------


async def test_many_workers_escalate_each_due_lead_exactly_once(
        world: World, redis_url: str, redis_client: redis.Redis) -> None:
    ids = [(await world.route(campaign="notify")).lead_id for _ in range(120)]
    world.clock.advance(minutes=6)
    stores = [await Store.connect(redis_url) for _ in range(4)]
    try:
        workers = [SlaService(store=s, rules=world.rules, settings=Settings(sla_batch=7),
                              clock=world.clock) for s in stores]

        async def drain(w: SlaService) -> int:
            total = 0
            while n := await w.tick():
                total += n
                await asyncio.sleep(0)
            return total

        claimed = await asyncio.gather(*(drain(w) for w in workers))
    finally:
        for s in stores:
            await s.close()
    assert sum(claimed) == 120 and all(claimed)  # every worker got some
    facts = [f for _, f in stream(redis_client, "lr:{lr}:sla:facts") if f[b"t"] == b"breach"]
    per_lead = collections.Counter(f[b"lead"].decode() for f in facts)
    assert per_lead == {i: 1 for i in ids}
    for i in ids[:10]:
        assert events(await world.get(i)).count("breached") == 1


async def test_a_claim_whose_worker_died_is_taken_over_once(world: World,
                                                            redis_client: redis.Redis) -> None:
    d = await world.route()
    world.clock.advance(minutes=10)
    state = world.sla.state
    fence, ids = await state.claim_due(world.clock.now, lease=dt.timedelta(seconds=15), batch=10)
    assert ids == [d.lead_id]  # ... and this worker dies before escalating
    assert await world.breach_all() == 0  # leased: nobody else takes it yet
    world.clock.advance(seconds=15)
    assert await world.breach_all() == 1  # lease over: another worker escalates it
    lead = await state.read_lead(d.lead_id)
    assert lead is not None
    # the first worker comes back with its stale fence: nothing happens
    late = await state.escalate(lead, fence=fence,
                                move=breach_move(world.ruleset, lead, world.clock.now,
                                                 nurture_queue="n"), now=world.clock.now)
    assert late.status == "stale"
    assert events(await world.get(d.lead_id)).count("breached") == 1


async def test_accept_racing_the_worker_wins_or_loses_cleanly(world: World) -> None:
    d = await world.route()
    world.clock.advance(minutes=10)
    state = world.sla.state
    fence, _ = await state.claim_due(world.clock.now, lease=dt.timedelta(seconds=15), batch=10)
    lead = await state.read_lead(d.lead_id)
    assert lead is not None
    accepted = await world.sla.act(d.lead_id, "accept", rep="r1")  # just before the worker
    assert accepted.sla.state == "late"
    result = await state.escalate(lead, fence=fence,
                                  move=breach_move(world.ruleset, lead, world.clock.now,
                                                   nurture_queue="n"), now=world.clock.now)
    assert result.status == "stale" and not result.acted
    assert "breached" not in events(await world.get(d.lead_id))


async def test_expired_lead_leaves_the_schedule(world: World, redis_client: redis.Redis) -> None:
    d = await world.route()
    redis_client.delete(f"lr:{{lr}}:lead:{d.lead_id}")
    world.clock.advance(minutes=10)
    assert await world.breach_all() == 1
    assert redis_client.zcard("lr:{lr}:sla:due") == 0


# -- pure parts --------------------------------------------------------------------------------


def test_breach_move_follows_the_policy(rules: RulesManager) -> None:
    ruleset = rules.current

    def lead(policy: str, *, pool: str = "rr", n: int = 0) -> SlaLead:
        return SlaLead(lead_id="L", state="assigned", owner="r1", pool=pool, queue="",
                       due_at=T0, owners=("r1",), reassignments=n, policy=policy,
                       assigned_at=T0, accepted_at=None, sla_state="")

    move = breach_move(ruleset, lead("sla-hot"), T0, nurture_queue="nq")
    assert (move.how, move.label, move.home, [p.id for p in move.chain]) == \
        ("pick", "reassign", "rr", ["rr"])
    assert move.due_at == T0 + dt.timedelta(minutes=10)
    assert breach_move(ruleset, lead("sla-hot", n=2), T0, nurture_queue="nq").label == \
        "final:queue:managers"
    direct = breach_move(ruleset, lead("sla-hot", pool=""), T0, nurture_queue="nq")
    assert (direct.how, direct.queue) == ("queue", "managers")
    assert breach_move(ruleset, lead("sla-n" "urture"), T0, nurture_queue="nq").queue == "nq"
    assert breach_move(ruleset, lead("gone"), T0, nurture_queue="nq").how == "notify"
    ny = breach_move(ruleset, lead("sla-ny", pool="ny"), T0, nurture_queue="nq")
    assert set(ny.due_by_rep) == {"ny1", "ny2"}


def test_report_percentiles_and_groups() -> None:
    def fact(kind: str, **kw: Any) -> Fact:
        base: dict[str, Any] = {"at": T0, "lead_id": "L", "policy": "p", "pool": "",
                                "queue": "", "owner": ""}
        return Fact(kind=kind, **{**base, **kw})

    facts = [fact("handoff", pool="a"), fact("handoff", queue="q"), fact("handoff")]
    facts += [fact("accept", pool="a", tta_ms=s * 1000, in_time=s < 9) for s in range(1, 11)]
    r = build_report(facts, T0, T0)
    assert set(r.by_pool) == {"a", "queue:q", "(direct)"}
    assert r.total.time_to_accept.count == 10
    assert r.total.time_to_accept.median_seconds == 5.5
    assert r.total.time_to_accept.p90_seconds == 9
    assert (r.total.accepted_in_time, r.total.accepted_late) == (8, 2)
    assert r.by_pool["queue:q"].time_to_accept.median_seconds is None


async def test_report_time_range_is_by_fact_time(world: World) -> None:
    await world.route()
    world.clock.advance(hours=2)
    await world.route()
    r = await world.sla.report(T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=3))
    assert r.total.handed_off == 1
    r = await world.sla.report(T0, T0)
    assert r.total.handed_off == 1


def test_rules_file_reject_reasons_are_used(tmp_path: Path) -> None:
    manager = RulesManager(write_rules(tmp_path / "r", RULES), require_tests=False)
    manager.load_initial()
    assert "spam" in manager.current.reject_reasons


def test_docs_cover_the_sla_settings_endpoints_and_events() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "sla.md").read_text("utf-8")
    for name in Settings.__struct_fields__:
        if name.startswith("sla_") or name in ("nurture_queue", "reroute_queue"):
            assert f"LEADROUTER_{name.upper()}" in text, name
    for path in ("/v1/leads/{id}/accept", "/v1/leads/{id}/contacted", "/v1/leads/{id}/reject",
                 "/v1/sla/report"):
        assert path in text, path
    for event in ("lead.breached", "lead.reassigned", "lead.recycled", "lead.requeued",
                  "lead.rerouted", "lead.accepted", "lead.contacted"):
        assert f"`{event}`" in text, event
