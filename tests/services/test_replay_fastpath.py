"""The replay's fast paths (router/services/replay.py, docs/BENCHMARKS.md issue 17 "Third
pass") give what the slow paths give: the compact comparison of the committed decision with
the evaluation (``_same``) says "unchanged" exactly when the two full outcomes are equal, and a
whole replay of varied leads — the shipped rules, a changed grade threshold, a pool with a
member removed (picks diverge) — yields byte-identical items and reports with the fast paths
as with the slow ones (``_same`` never taken, pick facts parsed for every lead)."""

from __future__ import annotations

import datetime as dt
import random
import shutil
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from leadrouter_sdk import Lead, Score

import router.services.replay as replay
from router.engine.evaluate import Evaluation
from router.engine.loader import load_directory
from router.engine.ruleset import Route
from router.intake.events import EventIn
from router.services.decide import DecisionPlan, DecisionSnapshot, RoutingIntent, decide_now
from router.services.decision_input import Committed, DecisionInput
from router.services.engagement import EngagementService
from router.services.leads import LeadService
from router.services.replay import ReplayService
from router.services.replay_model import ReplayedLead, ReplayQuery, Skip
from router.services.replay_report import collect
from router.services.rules import RulesManager
from router.settings import Settings
from router.state.engagement import EngagementStore
from router.state.inputs import PickFacts, parse_pick
from router.state.store import Store

ROOT = Path(__file__).resolve().parents[2]
T0 = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)  # a Monday morning in EMEA
LEADS = 900
REPS = ["alice", "ben", "carmen", "david", "erin", "gabrielle", "harriet", "ingo", "jana"]
EVENTS = ["demo_requested", "contact_sales", "pricing_page_viewed", "email_clicked"]
_NAME = st.sampled_from([None, "a", "b"])
_SCORE = st.sampled_from([0.0, -0.0, 12.5, 60.0, 60.000000001])
_MATCHED = st.sampled_from([(), ("r1",), ("r1", "r2"), ("r2", "r1")])


_FIELDS = {"status": st.sampled_from(["mql", "sql"]), "score": _SCORE, "grade": _NAME,
           "territory": _NAME, "segment": _NAME, "sla": _NAME, "rule": _NAME,
           "matched": _MATCHED, "owner": _NAME, "pool": _NAME, "queue": _NAME}


@settings(max_examples=500, deadline=None)
@given(data=st.data(), base=st.fixed_dictionaries(_FIELDS),
       moved=st.sets(st.sampled_from(sorted(_FIELDS)), max_size=2))
def test_the_compact_comparison_agrees_with_comparing_the_outcomes(
        data: st.DataObject, base: dict[str, Any], moved: set[str]) -> None:
    # The replay's side: the committed values with at most two fields drawn again.
    new = {**base, **{f: data.draw(_FIELDS[f], label=f) for f in sorted(moved)}}
    committed = Committed(base["status"], base["score"], base["grade"], base["territory"],
                          base["segment"], base["sla"], base["rule"], base["matched"])
    inp = DecisionInput(Lead(email="x@example.com"), DecisionSnapshot(now=T0), (), None, "api",
                        "v1", committed)
    facts = PickFacts(owner=base["owner"], pool=base["pool"], queue=base["queue"], pools=[])
    ev = Evaluation(rules_version="v2",
                    score=Score(total=new["score"], grade=new["grade"], fit=0.0, bant=0.0,
                                engagement=0.0),
                    status=new["status"], territory=new["territory"], segment=new["segment"],
                    route=Route(kind="queue", target="q", rule=new["rule"], reason=""),
                    sla_policy=new["sla"], matched=new["matched"], decided=(-1, -1, -1, -1, -1))
    plan = DecisionPlan(lead=inp.lead, evaluation=ev, explanation=(),
                        routing=RoutingIntent(kind="queue"))
    picked = (new["owner"], new["pool"], new["queue"])
    assert replay._same(committed, facts, ev, picked) == \
        (replay._before(inp, facts) == replay._after(plan, picked))


def _lead(rng: random.Random) -> Lead:
    fields: dict[str, Any] = {
        "email": f"p{rng.randrange(LEADS // 3)}@co{rng.randrange(30)}.example",
        "country": rng.choice([None, "US", "CA", "DE", "GB", "AU", "BR"]),
        "title": rng.choice([None, "VP of Sales", "Director of Marketing", "Intern", "CEO"]),
        "employees": rng.choice([None, 12, 80, 300, 2500, 9000]),
        "budget": rng.choice([None, 3000, 20000, 60000, 250000]),
        "timeline_days": rng.choice([None, 14, 60, 400]),
        "authority": rng.choice([None, "decision maker", "influencer"])}
    return Lead(**{k: v for k, v in fields.items() if v is not None})


async def _route(store: Store, manager: RulesManager) -> None:
    """Varied leads over two weeks of clock: engagement before some, reps going away."""
    rng = random.Random(29)
    now = [T0]
    engagement = EngagementService(state=EngagementStore(store), rules=manager,
                                   clock=lambda: now[0])
    leads = LeadService(store=store, rules=manager, settings=Settings(), clock=lambda: now[0],
                        engagement=engagement.state.limits, rescore=engagement.after_commit)
    await store.put_account("co1.example", "ben")
    for _ in range(LEADS):
        now[0] += dt.timedelta(minutes=rng.randint(1, 40))
        if rng.random() < 0.05:
            until = now[0] + dt.timedelta(minutes=rng.randint(-30, 600))
            await store.put_rep(rng.choice(REPS), rng.choice(("away", "available")),
                                until if rng.random() < 0.7 else None, now=now[0])
        lead = _lead(rng)
        if rng.random() < 0.4:
            await engagement.ingest(EventIn(event=rng.choice(EVENTS), email=lead.email,
                                            timestamp=now[0]))
        outcome, _, _ = await leads.route(lead, body=msgspec.json.encode(lead),
                                          spam="honeypot" if rng.random() < 0.05 else None)
        assert outcome == "created"


def _slow(monkeypatch: pytest.MonkeyPatch) -> None:
    """The slow paths: ``decide_now()`` for every lead, its two outcomes built and compared,
    its pick facts parsed."""
    def quick(self: Any, s: Any, inp: DecisionInput, facts: Any, ruleset: Any,
              evaluator: Any) -> ReplayedLead:  # what the replay did before _quick
        plan = decide_now(inp.lead, inp.snapshot, ruleset, evaluator=evaluator,
                          notes=inp.notes, spam=inp.spam, explain=False)
        result: ReplayedLead = self._compared(s, inp, facts, ruleset, plan)
        return result

    monkeypatch.setattr(replay, "_same", lambda *_: False)
    monkeypatch.setattr(replay._Run, "_parsed", lambda _self, raw: parse_pick(raw))
    monkeypatch.setattr(replay._Run, "_quick", quick)


async def _both(service: ReplayService, rulesets: Any, candidate: Any, base: Any,
                monkeypatch: pytest.MonkeyPatch) -> tuple[list[ReplayedLead | Skip], bytes]:
    fast = [item async for item in service.run(rulesets, ReplayQuery())]
    fast_report = await collect(service.run(rulesets, ReplayQuery()), candidate=candidate,
                                base=base)
    with monkeypatch.context() as m:
        _slow(m)
        slow = [item async for item in service.run(rulesets, ReplayQuery())]
        slow_report = await collect(service.run(rulesets, ReplayQuery()), candidate=candidate,
                                    base=base)
    assert msgspec.json.encode(fast) == msgspec.json.encode(slow)
    assert msgspec.json.encode(fast_report) == msgspec.json.encode(slow_report)
    return fast, msgspec.json.encode(fast_report)


@pytest.mark.anyio
async def test_fast_and_slow_replays_give_the_same_items_and_reports(
        redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules_dir = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules_dir, ignore=shutil.ignore_patterns("tests"))
    v1 = load_directory(rules_dir)
    manager = RulesManager(rules_dir, require_tests=False)
    manager.load_initial()
    store = await Store.connect(redis_url, retention=dt.timedelta(days=400))
    try:
        await _route(store, manager)
        scoring = rules_dir / "scoring.yaml"
        scoring.write_text(scoring.read_text().replace(
            "grades: {A: 80, B: 60, C: 40, D: 0}", "grades: {A: 80, B: 65, C: 40, D: 0}"))
        v2 = load_directory(rules_dir)
        routing = rules_dir / "routing.yaml"
        routing.write_text(routing.read_text().replace(
            "members: [carmen, erin, gabrielle, ben]", "members: [carmen, erin, gabrielle]"))
        fewer = load_directory(rules_dir)
        service = ReplayService(store, evaluator=manager.evaluator, batch=256)
        same, _ = await _both(service, v1, v1, v1, monkeypatch)
        replayed = [i for i in same if isinstance(i, ReplayedLead)]
        assert len(replayed) == LEADS and all(i.before is i.after for i in replayed)
        assert len({i.before.pool for i in replayed}) >= 3  # variety
        assert len({i.before.status for i in replayed}) >= 3
        assert sum(i.before.queue == "spam" for i in replayed) > 10
        grades, _ = await _both(service, v2, v2, v1, monkeypatch)
        moved, _ = await _both(service, fewer, fewer, v1, monkeypatch)
        for items, field in ((grades, "grade"), (moved, "owner")):
            changed = [i for i in items if isinstance(i, ReplayedLead) and i.before != i.after]
            assert changed and any(getattr(i.before, field) != getattr(i.after, field)
                                   for i in changed)
            assert all(i.after.explanation for i in changed)
        assert any(i.before.owner == "ben" and i.after.owner != "ben" for i in moved
                   if isinstance(i, ReplayedLead))
    finally:
        await store.close()
