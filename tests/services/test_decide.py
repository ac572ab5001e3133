"""router/services/decide.py: the one place a lead is decided.

* the decision is a pure function of (lead, snapshot, rules): a property test over generated
  leads and snapshots decides twice — the second time from the snapshot after a msgspec JSON
  round trip, as a replay would — and gets the same plan, byte for byte (with and without a
  deterministic plugin host);
* live routing, the dry run and engagement re-scoring store / answer what ``decide()`` decides
  on the same inputs (real Valkey, the shipped rules);
* the spam override is ``decide()``'s.
"""

from __future__ import annotations

import ast
import asyncio
import datetime as dt
import functools
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from leadrouter_email_quality import SUGGESTED_POINTS, EmailQuality
from leadrouter_sdk import Lead, lead_from_mapping

from router.engine.cases import CaseState, PastEvent, snapshot_for
from router.engine.engagement import DAY_MS, activity_from_times, ms
from router.engine.evaluate import evaluate
from router.engine.loader import load_directory, load_texts
from router.engine.ruleset import Ruleset
from router.intake.config import compile_intake
from router.intake.events import EventIn
from router.plugins.host import PluginHost
from router.services.decide import (
    DecisionPlan,
    DecisionSnapshot,
    PersonFacts,
    case_snapshot,
    decide,
    dry_run,
    engine_snapshot,
    explain_plan,
)
from router.services.decision_input import (
    DecisionInput,
    committed_of,
    decode_input,
    decode_stored,
    encode_input,
)
from router.services.engagement import EngagementService
from router.services.leads import LeadService
from router.services.records import decode_record
from router.services.rules import RulesManager
from router.services.snapshots import snapshot_of
from router.settings import Settings
from router.state.engagement import EngagementStore, email_person
from router.state.store import Store

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
T0 = dt.datetime(2026, 3, 3, 15, 0, tzinfo=dt.UTC)  # a Tuesday: NA and EMEA reps at work
# Decaying points too (the shipped rules have none): the engagement section of the docs.
ENGAGEMENT = """\
engagement:
  half_life: 14d
  events:
    demo_requested: {points: 30}
    pricing_page_viewed: {points: 5, cap: 20}
    webinar_attended: {points: 8, cap: 24}
    content_downloaded: {points: 3, cap: 12}
"""


def _files() -> dict[str, str]:
    return {p.name: p.read_text("utf-8") for p in sorted(RULES.glob("*.yaml"))}


SHIPPED: Ruleset = load_texts(_files())
DECAYING: Ruleset = load_texts({**_files(), "engagement.yaml": ENGAGEMENT})
EVENTS = ("demo_requested", "contact_sales", "trial_started", "pricing_page_viewed",
          "webinar_attended", "content_downloaded", "page_viewed", "email_clicked")


def _plugins() -> PluginHost:
    """A deterministic host: the example email-quality plugin (score hook, no DNS), with a
    budget no test machine misses."""
    host = PluginHost(budget=30.0, metrics=False)
    host.register(EmailQuality(SUGGESTED_POINTS), "email-quality")
    return host


PLUGINS = _plugins()

# --- generated leads and snapshots -----------------------------------------------------------

DOMAINS = ("acme-corp.example", "globex.example", "gmail.com", "mailinator.com", "initech.io",
           "bigbank.co.uk", "startup.de", "example.test")
LOCALS = ("ann", "bo.chen", "info", "sales", "test1", "dee+x", "vp")
TITLES = ("VP of Sales", "CEO", "Head of IT", "Student", "Marketing Manager", "Engineer", None)
PLACES = (("US", ("CA", "NY", "TX", None)), ("CA", ("ON", "BC")), ("GB", (None,)),
          ("DE", (None,)), ("AU", ("NSW",)), ("BR", (None,)), (None, (None,)))


@st.composite
def leads(draw: Any) -> Lead:
    country, states = draw(st.sampled_from(PLACES))
    fields: dict[str, Any] = {
        "email": f"{draw(st.sampled_from(LOCALS))}@{draw(st.sampled_from(DOMAINS))}",
        "title": draw(st.sampled_from(TITLES)),
        "company": draw(st.sampled_from(("Acme", "Globex", None))),
        "employees": draw(st.none() | st.integers(1, 200_000)),
        "annual_revenue": draw(st.none() | st.floats(0, 1e10, allow_nan=False)),
        "industry": draw(st.sampled_from(("software", "finance", "retail", None))),
        "country": country,
        "state": draw(st.sampled_from(states)),
        "budget": draw(st.none() | st.sampled_from((0, 5000, 20000, 50000, 250000))),
        "authority": draw(st.sampled_from(("decision_maker", "influencer", "user", None))),
        "timeline_days": draw(st.none() | st.integers(0, 400)),
        "source": draw(st.sampled_from(("web", "webinar", "partner", "paid_search", None))),
        "utm_source": draw(st.sampled_from(("google", "linkedin", None))),
        "campaign": draw(st.sampled_from(("spring", "junk", None))),
        "attributes": {"plan": draw(st.sampled_from(("free", "trial", "pro")))},
    }
    return lead_from_mapping({k: v for k, v in fields.items() if v is not None})


nows = st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2027, 12, 31),
                    timezones=st.just(dt.UTC))
traits = st.dictionaries(
    st.sampled_from(("employees", "country", "title", "budget", "industry", "company")),
    st.sampled_from((5000, 12, "US", "DE", "CEO", 100000, "software", "Initech")), max_size=4)


@st.composite
def snapshots(draw: Any) -> DecisionSnapshot:
    now = draw(nows)
    person = None
    if draw(st.booleans()):
        now_ms = ms(now)
        times = draw(st.dictionaries(
            st.sampled_from(EVENTS),
            st.lists(st.integers(0, 120 * DAY_MS).map(lambda ago: now_ms - ago), max_size=6),
            max_size=4))
        given_traits = draw(st.none() | traits)
        person = PersonFacts(
            activity=activity_from_times(times, now_ms, seq=draw(st.integers(0, 50))),
            traits=given_traits,
            traits_at=draw(st.none() | st.just(now - dt.timedelta(days=1))))
    return DecisionSnapshot(
        now=now, account_owner=draw(st.sampled_from((None, "alice", "nobody-known"))),
        person=person,
        lead_at=draw(st.none() | st.just(now - dt.timedelta(days=2))))


def _decide(lead: Lead, snapshot: DecisionSnapshot, ruleset: Ruleset,
            plugins: PluginHost | None, spam: str | None = None) -> DecisionPlan:
    return asyncio.run(decide(lead, snapshot, ruleset,
                              evaluator=functools.partial(evaluate, ruleset),
                              plugins=plugins, spam=spam))


PROPERTY = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(lead=leads(), snapshot=snapshots(), decaying=st.booleans(), with_plugins=st.booleans(),
       spam=st.none() | st.just("honeypot field filled"))
def test_the_same_inputs_decide_the_same_byte_for_byte(
        lead: Lead, snapshot: DecisionSnapshot, decaying: bool, with_plugins: bool,
        spam: str | None) -> None:
    ruleset = DECAYING if decaying else SHIPPED
    plugins = PLUGINS if with_plugins else None
    first = _decide(lead, snapshot, ruleset, plugins, spam)
    # What a replay has: the snapshot and the lead as stored (JSON), decoded again.
    stored = msgspec.json.decode(msgspec.json.encode(snapshot), type=DecisionSnapshot)
    assert stored == snapshot
    again = msgspec.json.decode(msgspec.json.encode(lead), type=Lead)
    second = _decide(again, stored, ruleset, plugins, spam)
    assert msgspec.json.encode(first) == msgspec.json.encode(second)
    # ...and the plan itself survives a round trip (it can be stored beside the snapshot).
    assert msgspec.json.decode(msgspec.json.encode(first), type=DecisionPlan) == first


def test_the_snapshot_is_what_the_decision_reads() -> None:
    """Engagement, traits, account owner and time each change the decision through the
    snapshot alone."""
    lead = Lead(email="ann@acme-corp.example", title="VP of Sales", employees=5000,
                country="US", state="CA", budget=100000)
    base = DecisionSnapshot(now=T0)
    plain = _decide(lead, base, DECAYING, None)
    demo = activity_from_times({"demo_requested": [ms(T0) - DAY_MS]}, ms(T0))
    engaged = _decide(lead, msgspec.structs.replace(
        base, person=PersonFacts(activity=demo)), DECAYING, None)
    assert engaged.evaluation.score.engagement > plain.evaluation.score.engagement
    owned = _decide(lead, msgspec.structs.replace(base, account_owner="alice"), SHIPPED, None)
    assert owned.routing.kind == "account_owner" and owned.routing.owner == "alice"
    assert owned.routing.owner_day is not None
    # Traits fill what the lead lacks; newer than the lead (re-scoring) they override it.
    facts = PersonFacts(traits={"country": "DE", "industry": "finance"},
                        traits_at=T0 - dt.timedelta(hours=1))
    filled = _decide(lead, msgspec.structs.replace(base, person=facts), SHIPPED, None)
    assert (filled.lead.country, filled.lead.industry) == ("US", "finance")
    newer = _decide(lead, msgspec.structs.replace(
        base, person=facts, lead_at=T0 - dt.timedelta(days=1)), SHIPPED, None)
    assert newer.lead.country == "DE"


def test_decide_applies_the_spam_override() -> None:
    lead = Lead(email="ann@acme-corp.example", title="VP of Sales", employees=5000,
                country="US", state="CA", budget=100000)
    real = _decide(lead, DecisionSnapshot(now=T0), SHIPPED, PLUGINS)
    assert real.evaluation.status != "bad_lead" and real.sla_policy is not None
    spam = _decide(lead, DecisionSnapshot(now=T0), SHIPPED, PLUGINS, spam="honeypot filled")
    ev = spam.evaluation
    assert ev.status == "bad_lead" and ev.sla_policy is None
    assert ev.score == real.evaluation.score  # scored all the same
    assert (ev.route.kind, ev.route.target, ev.route.reason) == ("queue", "spam",
                                                                 "honeypot filled")
    assert (spam.routing.kind, spam.routing.queue, spam.routing.chain) == ("queue", "spam", ())
    assert spam.due_at is None and spam.due_by_rep == {}
    last = spam.explanation[-1]
    assert (last.stage, last.outcome, last.detail) == ("intake", "bad_lead", "honeypot filled")


# --- everyone calls it ------------------------------------------------------------------------

def _manager() -> RulesManager:
    manager = RulesManager(RULES, require_tests=False)
    manager.load_initial()
    return manager


def _services(store: Store, manager: RulesManager
              ) -> tuple[LeadService, EngagementService]:
    engagement = EngagementService(state=EngagementStore(store), rules=manager,
                                   clock=lambda: T0, plugins=PLUGINS)
    leads = LeadService(store=store, rules=manager, settings=Settings(), clock=lambda: T0,
                        plugins=PLUGINS, engagement=engagement.state.limits,
                        rescore=engagement.after_commit)
    return leads, engagement


def _same(stored: Any, plan: DecisionPlan) -> None:
    ev = plan.evaluation
    assert (stored.status, stored.score, stored.territory, stored.segment, stored.matched) == \
        (ev.status, ev.score, ev.territory, ev.segment, ev.matched)
    assert stored.explanation == plan.explanation
    assert stored.lead == plan.lead
    assert stored.sla_policy == plan.sla_policy


LEAD = Lead(email="ann@acme-corp.example", title="VP of Sales", employees=5000, country="US",
            state="CA", budget=100000)


@pytest.mark.anyio
async def test_live_routing_and_the_dry_run_store_what_decide_decides(store: Store) -> None:
    manager = _manager()
    ruleset = manager.current
    leads, _ = _services(store, manager)
    for spam in (None, "honeypot filled"):
        outcome, decision, lead_id = await leads.route(LEAD, body=b"{}", spam=spam)
        assert outcome == "created" and decision is not None
        stored_lead = await store.get_lead(lead_id)
        assert stored_lead is not None
        record = decode_record(stored_lead.decision)
        # A new person: the prefetch read it, with no activity yet.
        snapshot = DecisionSnapshot(now=T0, person=PersonFacts())
        plan = await decide(LEAD, snapshot, ruleset, evaluator=manager.evaluator(ruleset),
                            plugins=PLUGINS, spam=spam)
        _same(record, plan)
        assert decision.explanation == plan.explanation
        assert (record.route_kind, record.route_rule, record.route_reason) == \
            (plan.routing.kind, plan.routing.rule, plan.routing.reason)
        owner = decision.assignment.owner or ""
        assert decision.sla.due_at == plan.due_by_rep.get(owner, plan.due_at)
        if spam is None:  # the dry run answers what routing stored
            dry = await dry_run(LEAD, CaseState(), T0, ruleset,
                                evaluator=manager.evaluator(ruleset), plugins=PLUGINS)
            assert (dry.evaluation.status, dry.evaluation.score, dry.explanation) == \
                (record.status, record.score, record.explanation)
        else:
            assert record.status == "bad_lead" and decision.assignment.queue == "spam"


@pytest.mark.anyio
async def test_rescoring_stores_what_decide_decides(store: Store) -> None:
    manager = _manager()
    ruleset = manager.current
    leads, engagement = _services(store, manager)
    _, _, lead_id = await leads.route(LEAD, body=b"{}")
    stored_lead = await store.get_lead(lead_id)
    assert stored_lead is not None
    before = decode_record(stored_lead.decision)
    result = await engagement.ingest(EventIn(event="demo_requested", email=LEAD.email,
                                             timestamp=T0 - dt.timedelta(hours=2)))
    assert result.lead is not None and result.lead.lead_id == lead_id
    assert result.lead.outcome in ("requalified", "rescored")
    person = await engagement.state.person(email_person(LEAD.email or ""),
                                           ruleset.engagement_events)
    assert person is not None
    plan = await decide(before.lead, snapshot_of(person, now=T0, account_owner=None,
                                                 lead_at=before.created_at),
                        ruleset, evaluator=manager.evaluator(ruleset), plugins=PLUGINS)
    after = await store.get_lead(lead_id)
    assert after is not None
    record = decode_record(after.decision)
    _same(record, plan)
    assert record.score.total > before.score.total  # the demo request counted
    # The same engagement as a dry run's "events N days ago" decides the same.
    dry = await dry_run(LEAD, CaseState(events=[PastEvent(event="demo_requested",
                                                          days_ago=2 / 24)]),
                        T0, ruleset, evaluator=manager.evaluator(ruleset), plugins=PLUGINS)
    assert (dry.evaluation.status, dry.evaluation.score) == (record.status, record.score)


def test_leads_and_engagement_do_not_import_each_other() -> None:
    for module, other in (("leads", "engagement"), ("engagement", "leads")):
        tree = ast.parse((ROOT / "router" / "services" / f"{module}.py").read_text("utf-8"))
        names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert f"router.services.{other}" not in names, module


@pytest.mark.parametrize("events", [
    [PastEvent(event="demo_requested", days_ago=0.5)] * 150,  # more than a person keeps
    [PastEvent(event="email_unsubscribed", days_ago=400),
     PastEvent(event="email_unsubscribed", days_ago=3)],
    [PastEvent(event="page_viewed", days_ago=1 / 3),
     PastEvent(event="webinar_attended", days_ago=-1)],
])
def test_rule_test_cases_read_past_events_as_the_dry_run_does(events: list[PastEvent]) -> None:
    """A rule test case (``rules test``, the reload gate) and the dry run describe engagement
    as "N days ago"; both must read it as live routing reads a stored person, or a case can
    pass and the same lead decide otherwise for real."""
    ruleset = load_directory(RULES, intake=compile_intake)  # count() and last() windows
    now = dt.datetime(2026, 5, 4, 12, 0, 0, 123456, tzinfo=dt.UTC)
    state = CaseState(events=events)
    case = snapshot_for(state, ruleset.windows, now)
    dry = engine_snapshot(ruleset, case_snapshot(state, now))
    assert case.counts == dry.counts and case.counts
    assert {k: v for k, v in case.last.items() if k in ruleset.last_events} == dry.last


@PROPERTY
@given(lead=leads(), snapshot=snapshots(), decaying=st.booleans(), with_plugins=st.booleans(),
       spam=st.none() | st.just("honeypot field filled"))
def test_the_replay_mode_decides_the_same_and_explains_on_demand(
        lead: Lead, snapshot: DecisionSnapshot, decaying: bool, with_plugins: bool,
        spam: str | None) -> None:
    """``explain=False`` (the replay): the same evaluation, lead and routing; no explanation
    rendered and no SLA deadlines; ``explain_plan`` gives the default explanation byte for byte.
    The stored input decoded without normalising again is the same input."""
    ruleset = DECAYING if decaying else SHIPPED
    plugins = PLUGINS if with_plugins else None
    full = _decide(lead, snapshot, ruleset, plugins, spam)
    lean = asyncio.run(decide(lead, snapshot, ruleset, plugins=plugins, spam=spam,
                              evaluator=functools.partial(evaluate, ruleset), explain=False))
    assert (lean.due_at, lean.due_by_rep) == (None, {})
    assert msgspec.json.encode(explain_plan(ruleset, lean)) == \
        msgspec.json.encode(full.explanation)
    same = msgspec.structs.replace(lean, explanation=full.explanation, due_at=full.due_at,
                                   due_by_rep=full.due_by_rep)
    assert msgspec.json.encode(same) == msgspec.json.encode(full)
    stored = DecisionInput(lead, snapshot, (), spam, "api", ruleset.version,
                           committed_of(full.evaluation))
    raw = encode_input(stored)
    trusted = decode_stored(raw)
    assert type(trusted.lead) is Lead and trusted == decode_input(raw) == stored


def test_a_stored_input_is_not_normalised_again() -> None:
    """decode_stored trusts what the service stored (it was normalised when decided):
    decode_input would normalise a raw field again, decode_stored keeps it as stored."""
    lead = Lead(email="ann@acme-corp.example", country="US")
    msgspec.structs.force_setattr(lead, "email", " Ann@ACME-corp.example")
    raw = encode_input(DecisionInput(lead, DecisionSnapshot(now=T0), (), None, "api", "v1",
                                     committed_of(_decide(lead, DecisionSnapshot(now=T0),
                                                          SHIPPED, None).evaluation)))
    assert decode_input(raw).lead.email == "ann@acme-corp.example"
    assert decode_stored(raw).lead.email == " Ann@ACME-corp.example"
