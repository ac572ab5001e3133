"""``sla.warning`` events (router/services/sla_warn.py, lua/sla_warn.lua) against real Valkey
on a controllable clock: once per lead and deadline, before the deadline, never after the
lead was accepted, again for a new owner's new deadline, exactly once across workers; the
breach worker beside it is unchanged."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from _rules import SLA_SCORING, sla_reps
from leadrouter_sdk import Decision, decode_lead

from router.services.leads import LeadService
from router.services.rules import RulesManager
from router.services.sla import SlaService
from router.services.sla_warn import SlaWarner
from router.settings import Settings
from router.state import Store
from router.state.outbox import OutboxEntry

pytestmark = pytest.mark.anyio

T0 = dt.datetime(2026, 3, 4, 15, 0, tzinfo=dt.UTC)
OUTBOX = "lr:{lr}:outbox"
RULES = {
    "scoring.yaml": SLA_SCORING,
    "reps.yaml": sla_reps("r1", "r2", "r3"),
    "routing.yaml": """\
territories:
  - {id: other, when: "true"}
segments:
  - {id: smb, when: "true"}
pools:
  rr: {strategy: round_robin, members: [r1, r2, r3], working_hours: false}
assignment:
  - {id: to-rr, when: "true", pool: rr}
""",
    "sla.yaml": """\
sla:
  - {id: sla-short, when: 'campaign == "short"', accept_within: 2m, on_breach: notify}
  - {id: sla-hot, when: "true", accept_within: 10m, clock: wall, on_breach: reassign,
     max_reassignments: 2, final: {queue: managers}}
""",
}


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> RulesManager:
    directory = tmp_path_factory.mktemp("warn") / "rules"
    directory.mkdir()
    for name, text in RULES.items():
        (directory / name).write_text(text, encoding="utf-8")
    manager = RulesManager(directory, require_tests=False)
    manager.load_initial()
    return manager


class World:
    def __init__(self, store: Store, rules: RulesManager, **settings: Any) -> None:
        self.clock = Clock(T0)
        self.settings = Settings(sla_warn_before=180, sla_batch=4, **settings)
        self.store, self.rules = store, rules
        self.leads = LeadService(store=store, rules=rules, settings=self.settings,
                                 clock=self.clock)
        self.sla = SlaService(store=store, rules=rules, settings=self.settings, clock=self.clock)
        self.warner = self.worker()

    def worker(self) -> SlaWarner:
        """Another process's warning worker on the same deployment."""
        return SlaWarner(store=self.store, rules=self.rules, settings=self.settings,
                         clock=self.clock)

    async def route(self, **fields: Any) -> Decision:
        body = json.dumps({"email": "jane@acme.example", "country": "US", **fields}).encode()
        outcome, decision, _ = await self.leads.route(decode_lead(body), body=body)
        assert outcome == "created" and decision is not None
        return decision


@pytest.fixture
def world(store: Store, rules: RulesManager, outbox_sink: str) -> World:
    return World(store, rules)


def warnings(client: redis.Redis) -> list[dict[str, Any]]:
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(OUTBOX))
    out = []
    for entry_id, flat in entries:
        fields = {k.decode(): v.decode() for k, v in flat.items()}
        if fields["type"] == "sla.warning":
            event = OutboxEntry(id=entry_id.decode(), fields=fields).event()
            out.append({"lead_id": event.lead_id, "at": event.at, **event.data})
    return out


async def test_a_warning_once_before_the_deadline(world: World,
                                                  redis_client: redis.Redis) -> None:
    d = await world.route()
    assert d.sla.due_at == T0 + dt.timedelta(minutes=10)
    assert await world.warner.tick() == 0
    world.clock.advance(minutes=6)  # due in 4 min: not yet (warn 3 min before)
    assert await world.warner.tick() == 0
    world.clock.advance(minutes=1, seconds=30)  # due in 2.5 min
    assert await world.warner.tick() == 1
    (got,) = warnings(redis_client)
    assert got["lead_id"] == d.lead_id and got["at"] == world.clock.now
    assert (got["owner"], got["rep"], got["pool"], got["policy"]) == ("r1", "r1", "rr",
                                                                      "sla-hot")
    assert got["due_at"] == T0 + dt.timedelta(minutes=10)
    assert got["minutes_left"] == "2" and got["state"] == "assigned"
    assert got["entry"]["data"]["minutes_left"] == 2
    assert got["email"] == "jane@acme.example"  # lifted from the decision, as for every event
    # once: later ticks, this worker's or a fresh one's, write nothing more
    world.clock.advance(seconds=30)
    assert await world.warner.tick() == 0
    assert await world.worker().tick() == 0
    assert len(warnings(redis_client)) == 1
    # the lead's own record is as before: the warning is no move
    assert (await world.leads.get(d.lead_id)) is not None


async def test_no_warning_after_acceptance_or_after_the_deadline(
        world: World, redis_client: redis.Redis) -> None:
    accepted = await world.route(email="a@acme.example")
    await world.route(email="b@acme.example")
    await world.sla.act(accepted.lead_id, "accept", rep=accepted.assignment.owner or "")
    world.clock.advance(minutes=11)  # both past their deadline; the worker first looks now
    assert await world.warner.tick() == 0
    assert warnings(redis_client) == []


async def test_a_new_deadline_after_a_reassignment_is_warned_again(
        world: World, redis_client: redis.Redis) -> None:
    d = await world.route()
    world.clock.advance(minutes=8)
    assert await world.warner.tick() == 1
    world.clock.advance(minutes=2)  # breached: the breach worker reassigns (unchanged)
    assert await world.sla.tick() == 1
    moved = await world.leads.get(d.lead_id)
    assert moved is not None and moved.assignment.owner == "r2"
    assert moved.sla.due_at == world.clock.now + dt.timedelta(minutes=10)
    world.clock.advance(minutes=8)
    assert await world.warner.tick() == 1
    first, second = warnings(redis_client)
    assert (first["owner"], second["owner"]) == ("r1", "r2")
    assert second["due_at"] == moved.sla.due_at


async def test_a_deadline_closer_than_the_warning_time_gets_none(
        world: World, redis_client: redis.Redis) -> None:
    await world.route(campaign="short")  # due in 2 min, warnings 3 min before
    assert await world.warner.tick() == 0
    world.clock.advance(minutes=1)
    assert await world.warner.tick() == 0
    assert warnings(redis_client) == []


async def test_exactly_once_across_workers_and_batches(world: World,
                                                       redis_client: redis.Redis) -> None:
    routed = [await world.route(email=f"p{i}@acme.example") for i in range(11)]
    # the same deadline to the millisecond for all: more than a batch (4) ties
    assert len({d.sla.due_at for d in routed}) == 1
    world.clock.advance(minutes=8)
    workers = [world.worker() for _ in range(3)]
    counts = await asyncio.gather(*(w.tick() for w in workers))
    assert sum(counts) == 11
    assert sorted(w["lead_id"] for w in warnings(redis_client)) == \
        sorted(d.lead_id for d in routed)


async def test_warning_times_from_the_policies_and_the_default(
        store: Store, rules: RulesManager, tmp_path: Path, outbox_sink: str,
        redis_client: redis.Redis) -> None:
    files = dict(RULES, **{"sla.yaml": """\
sla:
  - {id: sla-long, when: 'campaign == "long"', accept_within: 30m, warn_before: 10m}
  - {id: sla-quiet, when: 'campaign == "quiet"', accept_within: 10m, warn_before: 0}
  - {id: sla-hot, when: "true", accept_within: 10m, clock: wall, on_breach: notify}
"""})
    directory = tmp_path / "rules"
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    own = RulesManager(directory, require_tests=False)
    own.load_initial()
    assert own.current.sla_policies["sla-long"].warn_before == 600
    w = World(store, own)  # the service default: 3 min
    assert [(g.before_ms, g.mode, g.policies) for g in w.warner.groups()] == [
        (600_000, "in", ("sla-long",)), (180_000, "out", ("sla-long", "sla-quiet"))]
    long = await w.route(campaign="long", email="l@acme.example")
    quiet = await w.route(campaign="quiet", email="q@acme.example")
    hot = await w.route(email="h@acme.example")
    w.clock.advance(minutes=8)  # hot: 2 min left (default 3 min); quiet: never
    assert await w.warner.tick() == 1
    w.clock.advance(minutes=13)  # long: 9 min left (its own 10 min)
    assert await w.warner.tick() == 1
    got = [(x["lead_id"], x["policy"]) for x in warnings(redis_client)]
    assert got == [(hot.lead_id, "sla-hot"), (long.lead_id, "sla-long")]
    assert quiet.lead_id not in {x[0] for x in got}
    # without the service default only the policies' own warning times count
    off = SlaWarner(store=store, rules=own, settings=Settings(), clock=w.clock)
    assert [g.policies for g in off.groups()] == [("sla-long",)]
    assert not SlaWarner(store=store, rules=rules, settings=Settings(),
                         clock=w.clock).groups()


def test_a_warning_not_shorter_than_the_sla_is_a_rules_error(tmp_path: Path) -> None:
    from router.engine import load_directory
    from router.engine.errors import RulesetError

    directory = tmp_path / "rules"
    directory.mkdir()
    files = dict(RULES, **{"sla.yaml": """\
sla:
  - {id: sla-x, when: "true", accept_within: 10m, warn_before: 10m}
  - {id: sla-y, when: "false", accept_within: 10m, warn_before: soon}
"""})
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    with pytest.raises(RulesetError) as info:
        load_directory(directory)
    text = str(info.value)
    assert "warn_before" in text and "never come" in text and "'soon'" in text


def test_the_setting_is_documented() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs"
    assert "LEADROUTER_SLA_WARN_BEFORE" in (docs / "notifications.md").read_text()
