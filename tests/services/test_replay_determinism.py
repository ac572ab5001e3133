"""The replay (router/services/replay.py) is deterministic: a few thousand varied leads routed by
the real LeadService on real Valkey with the shipped rules — every pool strategy, daily caps,
reps away / out of office with ``until``, working hours over three weeks of clock, account
owners, strategic owners, queues, engagement before and after the lead (re-scoring rewrites
some stored decisions and re-routes some leads), a hot reload in the middle — replayed with the
rules that decided them, each lead against its own version's: 0 changed. Then: a changed grade
threshold moves exactly the leads computed by hand; an erased lead is not replayed; leads
without a kept input are counted as skipped."""

from __future__ import annotations

import collections
import datetime as dt
import random
import shutil
from pathlib import Path
from typing import Any

import msgspec
import pytest
from leadrouter_sdk import Lead

from router.engine.loader import load_directory
from router.intake.events import EventIn
from router.services.decision_input import decode_input
from router.services.engagement import EngagementService
from router.services.leads import LeadService
from router.services.records import decode_record
from router.services.replay import NO_INPUT, ReplayService, redecide
from router.services.replay_model import ReplayedLead, ReplayQuery, Skip
from router.services.rules import RulesManager
from router.settings import Settings
from router.state.engagement import EngagementStore
from router.state.erasure import erase_leads
from router.state.models import to_ms
from router.state.store import Store

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
T0 = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)  # a Monday morning in EMEA
LEADS = 2400
RELOAD_AT = 1200
V2_GRADES = "grades: {A: 80, B: 65, C: 40, D: 0}"  # v1: B from 60

COUNTRIES = [("US", "CA"), ("US", "NY"), ("US", "TX"), ("US", None), ("CA", None), ("DE", None),
             ("AT", None), ("GB", None), ("FR", None), ("AU", None), ("SG", None), ("BR", None),
             ("MX", None), ("RU", None), (None, None)]
TITLES = [None, "VP of Sales", "Director of Marketing", "Intern", "Student", "CEO",
          "Sales Manager", "Engineer"]
DOMAINS = [f"co{i}.example" for i in range(40)] + ["globex.example", "hooli.example",
                                                   "gmail.com", "example.com"]
OWNED = {"co1.example": "ben", "co2.example": "harriet", "co3.example": "kenji"}
REPS = ["alice", "ben", "carmen", "david", "erin", "gabrielle", "harriet", "ingo", "jana",
        "kenji", "liam", "mariana"]
EVENTS = ["demo_requested", "contact_sales", "pricing_page_viewed", "webinar_attended",
          "email_clicked", "trial_started"]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


def _lead(rng: random.Random, i: int) -> Lead:
    country, state = rng.choice(COUNTRIES)
    domain = rng.choice(DOMAINS)
    fields: dict[str, Any] = {
        "email": f"p{rng.randrange(LEADS // 2)}@{domain}", "country": country, "state": state,
        "title": rng.choice(TITLES), "employees": rng.choice([None, 12, 80, 300, 2500, 9000]),
        "annual_revenue": rng.choice([None, 2e6, 6e7, 3e8]),
        "budget": rng.choice([None, 3000, 20000, 60000, 250000]),
        "timeline_days": rng.choice([None, 14, 60, 120, 400]),
        "authority": rng.choice([None, "decision maker", "influencer"]),
        "company": rng.choice([None, "Acme", "test", "Globex"]),
    }
    return Lead(**{k: v for k, v in fields.items() if v is not None})


async def _route_all(store: Store, manager: RulesManager, rules_dir: Path
                     ) -> tuple[list[str], dict[str, str]]:
    """Route LEADS leads (hot reload at RELOAD_AT); returns their ids and each id's version."""
    rng = random.Random(17)
    clock = Clock()
    engagement = EngagementService(state=EngagementStore(store), rules=manager, clock=clock)
    leads = LeadService(store=store, rules=manager, settings=Settings(), clock=clock,
                        engagement=engagement.state.limits, rescore=engagement.after_commit)
    for domain, owner in OWNED.items():
        await store.put_account(domain, owner)
    ids: list[str] = []
    version: dict[str, str] = {}
    for i in range(LEADS):
        clock.now += dt.timedelta(minutes=rng.randint(1, 25))
        if i == RELOAD_AT:
            scoring = rules_dir / "scoring.yaml"
            scoring.write_text(scoring.read_text().replace(
                "grades: {A: 80, B: 60, C: 40, D: 0}", V2_GRADES))
            assert manager.reload(force=True).ok
        if rng.random() < 0.04:  # a rep goes away / out of office, often until a time
            until = clock.now + dt.timedelta(minutes=rng.randint(-30, 600)) \
                if rng.random() < 0.7 else None
            await store.put_rep(rng.choice(REPS), rng.choice(("away", "out_of_office",
                                                               "available")),
                                until, now=clock.now)
        lead = _lead(rng, i)
        if rng.random() < 0.15:  # engagement before the lead
            await engagement.ingest(EventIn(event=rng.choice(EVENTS), email=lead.email,
                                            timestamp=clock.now))
        outcome, decision, lead_id = await leads.route(
            lead, body=msgspec.json.encode(lead),
            spam="honeypot" if rng.random() < 0.02 else None)
        assert outcome == "created" and decision is not None, outcome
        ids.append(lead_id)
        version[lead_id] = decision.rules_version
        if rng.random() < 0.1:  # engagement after: re-scoring, sometimes a re-route
            clock.now += dt.timedelta(seconds=30)
            await engagement.ingest(EventIn(event=rng.choice(EVENTS[:2]), email=lead.email,
                                            timestamp=clock.now))
    return ids, version


async def _replay(service: ReplayService, rulesets: Any,
                  query: ReplayQuery | None = None) -> list[ReplayedLead | Skip]:
    return [item async for item in service.run(rulesets, query or ReplayQuery())]


def _changed(items: list[ReplayedLead | Skip]) -> list[ReplayedLead]:
    return [i for i in items if isinstance(i, ReplayedLead) and i.before != i.after]


async def test_replay_reproduces_every_stored_decision(redis_url: str, tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules_dir, ignore=shutil.ignore_patterns("tests"))
    v1 = load_directory(rules_dir)
    manager = RulesManager(rules_dir, require_tests=False)
    manager.load_initial()
    store = await Store.connect(redis_url, retention=dt.timedelta(days=400))
    try:
        ids, version = await _route_all(store, manager, rules_dir)
        v2 = manager.current
        assert v2.version != v1.version and set(version.values()) == {v1.version, v2.version}
        service = ReplayService(store, evaluator=manager.evaluator, batch=300)
        seen: list[int] = []
        items = await _replay(service, {v1.version: v1, v2.version: v2})
        await _same_as_stored(store, service, items, ids, {v1.version: v1, v2.version: v2})
        assert _changed(items) == []
        # Variety: what the stream held (else 0 changed proves little).
        replayed = [i for i in items if isinstance(i, ReplayedLead)]
        kinds = collections.Counter(
            "pool" if i.before.pool else "owner" if i.before.owner else "queue"
            for i in replayed)
        assert min(kinds.values()) > 100, kinds
        assert len({i.before.pool for i in replayed}) >= 5
        assert len({i.before.status for i in replayed}) >= 4
        rewritten = sum(1 for raw in await store.wire.batch(
            [("HGET", store.keys.lead(i), "status") for i in ids]) if raw is not None)
        assert rewritten > 20  # re-scored leads: their "before" is still the arrival's

        # The rules of v1 for every lead: exactly the v2 leads scoring 60-65 change, their
        # grade alone (C under v2 → B under v1).
        by_one = await _replay(service, v1, None)
        expected = {i.lead_id for i in replayed
                    if version[i.lead_id] == v2.version and 60 <= i.before.score < 65}
        assert expected and {c.lead_id for c in _changed(by_one)} == expected
        for c in _changed(by_one):
            assert (c.before.grade, c.after.grade) == ("C", "B")
            assert msgspec.structs.replace(c.after, grade="C", explanation=()) == \
                msgspec.structs.replace(c.before, explanation=())
            assert c.before.explanation and c.after.explanation

        # A window, a limit, filters and progress.
        mid = replayed[RELOAD_AT].created_at
        window = await _replay(service, v2, ReplayQuery(since=mid, limit=50, status="mql"))
        assert len(window) == 50 and all(
            isinstance(i, ReplayedLead) and i.before.status == "mql"
            and version[i.lead_id] == v2.version and i.before == i.after for i in window)
        [item async for item in service.run(v1, ReplayQuery(), progress=seen.append)]
        assert seen[-1] == LEADS and seen == sorted(seen)

        # Erased: gone from the replay. Inputs dropped (as leads stored before inputs were
        # kept): counted as skipped, and the rest still reproduce.
        erased, old = ids[10], ids[20:23]
        await erase_leads(store, [erased], now_ms=to_ms(T0), kind="lead", by="test")
        for lead_id in old:
            await store.wire.call("HDEL", store.keys.lead(lead_id), "input", "pick")
        after = await _replay(service, {v1.version: v1, v2.version: v2})
        assert erased not in {i.lead_id for i in after}
        assert await store.wire.call("ZSCORE", store.keys.arrivals, erased) is None
        skips = [i for i in after if isinstance(i, Skip)]
        assert [(s.lead_id, s.reason) for s in skips] == [(i, NO_INPUT) for i in old]
        assert len(after) == LEADS - 1 and _changed(after) == []
        only_v1 = await _replay(service, {v1.version: v1})
        assert sum(isinstance(i, Skip) for i in only_v1) == \
            sum(1 for i in ids if version[i] == v2.version) + 3
    finally:
        await store.close()


async def _same_as_stored(store: Store, service: ReplayService,
                          items: list[ReplayedLead | Skip], ids: list[str],
                          rulesets: dict[str, Any]) -> None:
    """Every lead replayed once, in arrival order; where the stored record is the arrival's
    (not re-scored), decide() on the stored input gives it field for field (contributions,
    explanation)."""
    assert [i.lead_id for i in items] == ids  # the clock moved on between any two leads
    assert all(isinstance(i, ReplayedLead) for i in items)
    replies = await store.wire.batch(
        [("HMGET", store.keys.lead(i), "input", "decision", "status") for i in ids])
    checked = 0
    for raw_input, raw_decision, status in replies:
        if status is not None:
            continue
        stored, record = decode_input(raw_input), decode_record(raw_decision)
        ruleset = rulesets[stored.rules_version]
        plan = await redecide(stored, ruleset, evaluator=service.evaluator(ruleset))
        ev = plan.evaluation
        assert (ev.status, ev.score, ev.territory, ev.segment, ev.sla_policy, ev.matched,
                ev.route.rule, plan.explanation) == \
            (record.status, record.score, record.territory, record.segment,
             record.sla_policy, record.matched, record.route_rule, record.explanation)
        checked += 1
    assert checked > len(ids) * 0.8
