"""Differential conformance: the durable-rules backend against the compiled engine.

Both engines read the same rule files; the compiled one runs Python compiled from each ``when``,
the durable-rules one a Rete network built from the same source (leadrouter_durable). For
every lead they must agree on the whole ``Evaluation``: score and contributions (in order),
grade, status, territory, segment, route, SLA policy, matched rule ids and ``decided``.

- the shipped ruleset (rules/) x its own test cases, hypothesis-generated leads (every Lead
  field, nulls, odd text, attributes of every kind) and a seeded bulk stream;
- hypothesis-generated *rulesets* over the constructs the backend supports, x generated leads;
- the oracle has teeth: a semantic change made to the compiled engine is detected;
- memory stays flat: facts are retracted after every lead.

Skipped, with the reason, where durable-rules cannot be imported (Python >= 3.13, where
`leadrouter-durable` installs without it) — except in CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import datetime
import gc
import json
import random
import resource
from pathlib import Path
from typing import Any

import msgspec
import pytest
from _ci import require_module
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from leadrouter_durable import DurableEngine, DurableUnsupported, durable_unavailable
from leadrouter_sdk import Lead, lead_from_mapping

from router.engine import BackendRefused
from router.engine import expr as expr_module
from router.engine._regions import REGIONS
from router.engine._runtime import RUNTIME
from router.engine.cases import DEFAULT_NOW, load_cases, snapshot_for
from router.engine.errors import RulesetError
from router.engine.evaluate import Evaluation, Snapshot, evaluate, explain
from router.engine.loader import load_directory, load_texts
from router.engine.ruleset import Ruleset
from router.services.rules import find_backend

# skipped where durable-rules is missing, failed in CI (CI=true; tests/_ci.py)
require_module("durable_rules_engine",
               reason="durable-rules is not importable: it needs `leadrouter-durable` and "
               "Python < 3.13 (its C extension does not load on 3.13+)")

RULES = Path(__file__).resolve().parents[3] / "rules"
NOW = datetime.datetime(2026, 11, 24, 17, 0, tzinfo=datetime.UTC)


# -- comparing the engines ----------------------------------------------------------------------

def differences(a: Evaluation, b: Evaluation) -> list[str]:
    return [f"{name}: compiled={getattr(a, name)!r} durable={getattr(b, name)!r}"
            for name in Evaluation.__struct_fields__ if getattr(a, name) != getattr(b, name)]


def mismatch(ruleset: Ruleset, engine: DurableEngine, lead: Lead, snapshot: Snapshot,
             now: datetime.datetime) -> list[str]:
    return differences(evaluate(ruleset, lead, snapshot, now=now),
                       engine.evaluate(lead, snapshot, now=now))


def assert_same(ruleset: Ruleset, engine: DurableEngine, lead: Lead, snapshot: Snapshot,
                now: datetime.datetime = NOW) -> Evaluation:
    expected = evaluate(ruleset, lead, snapshot, now=now)
    got = engine.evaluate(lead, snapshot, now=now)
    diff = differences(expected, got)
    assert not diff, ("the engines disagree\n  " + "\n  ".join(diff)
                      + f"\nlead: {msgspec.json.encode(lead).decode()}\nsnapshot: {snapshot!r}")
    return got


@pytest.fixture(scope="module")
def shipped() -> Ruleset:
    return load_directory(RULES)


@pytest.fixture(scope="module")
def shipped_engine(shipped: Ruleset) -> DurableEngine:
    return DurableEngine(shipped)


# -- leads -------------------------------------------------------------------------------------

LOCALS = ["jane.doe", "info", "sales", "test", "asdf7", "no-reply", "student", "x", "marco",
          "O'Brien", "hello", "a.b+c"]
MAIL_DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "mailinator.com", "10minutemail.com",
                "acme.example", "globex.example", "hooli.example", "pipelinepro.example",
                "www.gmail.com", "www.acme.example", "uni.edu", "cs.ox.ac.uk", "example.com",
                "bigcorp.example", "soylent.example", "xn--bcher-kva.example"]
TITLES = ["VP of Sales", "Chief Revenue Officer", "Head of Marketing Ops", "Director, IT",
          "Managing Director", "Senior Software Engineer", "Marketing Manager", "Student",
          "Intern", "CEO", "Founder", "Team Lead", "Directora Comercial", "Data Analyst", "x",
          "vp", "General Manager", "PhD Candidate", "svp", "Gerente"]
COUNTRIES = ["US", "CA", "GB", "IE", "DE", "AT", "CH", "FR", "ES", "AU", "NZ", "SG", "JP",
             "IN", "BR", "MX", "AR", "CU", "IR", "RU", "ZA", "AE", "Germany", "usa", "U.K."]
STATES = ["CA", "WA", "OR", "NY", "TX", "IL", "MA", "ON", "QC", "BC", "BY", "NSW", "SP",
          "US-CA", "California", "Bavaria", "ZZ"]
INDUSTRIES = ["Software", "SaaS", "Financial Services", "Insurance", "Telecommunications",
              "Manufacturing", "Logistics", "Higher Education", "Government", "Non-profit",
              "Retail", "Healthcare Technology", "software"]
AUTHORITY = ["decision maker", "Decision_Maker", "budget-holder", "influencer", "champion",
             "user", "  signer  ", "economic buyer"]
NEEDS = ["Replace our spreadsheet-based lead routing before Q1", "RFP for routing",
         "just looking", "We are evaluating tools to consolidate our stack", "x" * 25]
ATTR_KEYS = ["a", "b", "x.y", "persona", "competitor", "plan", "n-1"]
EVENTS = ["demo_requested", "contact_sales", "trial_started", "pricing_page_viewed",
          "webinar_attended", "content_downloaded", "email_clicked", "page_viewed",
          "email_unsubscribed", "demo", "webinar", "pricing"]
REPS = ["alice", "bob", "carmen", "harriet", "mariana"]

odd_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


def maybe(values: list[Any], extra: st.SearchStrategy[Any] | None = None) -> Any:
    options: list[st.SearchStrategy[Any]] = [st.none(), st.sampled_from(values)]
    if extra is not None:
        options.append(extra)
    return st.one_of(*options)


attribute_value = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([0.0, -0.0, 1.0, 2.5]),
    st.sampled_from(["student", "x", "1", "true", "", "VP", "a"]), odd_text)

lead_fields: dict[str, Any] = {
    "email": maybe([f"{a}@{d}" for a in LOCALS for d in MAIL_DOMAINS]),
    "first_name": maybe(["Ana", "test", "asdf", "xxx", "n/a", "Null", "Chen"], odd_text),
    "last_name": maybe(["Doe", "fake", "X", "Müller"], odd_text),
    "title": maybe(TITLES, odd_text),
    "phone": maybe(["+14155550100", "(415) 555-0100", "555-0100", "+44 20 7946 0958", "12"]),
    "company": maybe(["Acme", "Globex", "n/a", "---", "Test", "Initech GmbH"], odd_text),
    "domain": maybe(["acme.example", "https://www.globex.example/x", "hooli.example",
                     "Acme Corp", "initech.example", "waynetech.example"]),
    "employees": maybe([0, 1, 49, 50, 199, 200, 999, 1000, 5000, 100_000_000],
                       st.integers(0, 100_000)),
    "annual_revenue": maybe([0.0, 9_999_999.99, 10_000_000.0, 5e7, 1e8, 2.5e8, 1e12],
                            st.floats(0, 1e13, allow_nan=False)),
    "industry": maybe(INDUSTRIES, odd_text),
    "country": maybe(COUNTRIES),
    "state": maybe(STATES),
    "city": maybe(["Berlin", "San Francisco", "São Paulo"]),
    "postal_code": maybe(["94105", "10115", "SW1A 1AA"]),
    "budget": maybe([0.0, 4999.99, 5000.0, 24_999.0, 25_000.0, 100_000.0, 1e9],
                    st.floats(0, 1e9, allow_nan=False)),
    "authority": maybe(AUTHORITY, odd_text),
    "need": maybe(NEEDS, odd_text),
    "timeline_days": maybe([0, 30, 31, 90, 91, 180, 181, 365, 366, 36_500],
                           st.integers(0, 36_500)),
    "source": maybe(["web", "webinar", "partner", "paid_search"]),
    "campaign": maybe(["q1-launch", "Q1 Launch"]),
    "utm_source": maybe(["google", "linkedin", "newsletter", ""]),
    "utm_medium": maybe(["cpc", "email"]),
    "utm_campaign": maybe(["brand", "x"]),
    "utm_term": maybe(["lead routing"]),
    "utm_content": maybe(["ad-1"]),
    "consent": st.one_of(st.none(), st.booleans()),
    "external_id": maybe(["crm-1", "42"]),
    "description": maybe(["a description"], odd_text),
    "attributes": st.dictionaries(st.sampled_from(ATTR_KEYS), attribute_value, max_size=4),
}
assert set(lead_fields) == set(Lead.__struct_fields__), "generate every Lead field"


@st.composite
def leads(draw: Any) -> Lead:
    values = {name: draw(strategy) for name, strategy in lead_fields.items()}
    try:
        return Lead(**values)
    except (ValueError, TypeError, msgspec.ValidationError):
        reject()


@st.composite
def snapshots(draw: Any, windows: frozenset[tuple[str, int]],
              events: frozenset[str]) -> Snapshot:
    counts = draw(st.dictionaries(st.sampled_from(sorted(windows)), st.integers(0, 4),
                                  max_size=6))
    ages = draw(st.dictionaries(st.sampled_from(sorted(events)),
                                st.tuples(st.integers(-86_400, 200 * 86_400), st.booleans()),
                                max_size=4))
    last = {}
    for event, (seconds, naive) in ages.items():
        when = NOW - datetime.timedelta(seconds=seconds)
        last[event] = when.replace(tzinfo=None) if naive and seconds % 5 == 0 else when
    owner = draw(st.one_of(st.none(), st.sampled_from([*REPS, "someone-else"])))
    return Snapshot(account_owner=owner, counts=counts, last=last)


def snapshot_strategy(ruleset: Ruleset) -> st.SearchStrategy[Snapshot]:
    return snapshots(ruleset.windows | {(e, d) for e in EVENTS for d in (7, 30)},
                     ruleset.last_events | frozenset(EVENTS))


ODD_TEXT = ["", " x ", "ß", "é", '"q"', "a\\b", "x\ny", "\x00", "😀", "1", "true", "null",
            "VP", "vp", "Ünïcödé", "a" * 200]
TEXT_POOLS: dict[str, list[Any]] = {
    "first_name": ["Ana", "test", "asdf", "xxx", "n/a", "Chen"], "last_name": ["Doe", "fake"],
    "title": TITLES, "phone": ["+14155550100", "555-0100", "12"],
    "company": ["Acme", "n/a", "---", "Test", "Initech GmbH"],
    "domain": ["acme.example", "https://www.globex.example/x", "hooli.example", "Acme Corp"],
    "industry": INDUSTRIES, "country": COUNTRIES, "state": STATES, "city": ["Berlin"],
    "postal_code": ["94105"], "authority": AUTHORITY, "need": NEEDS,
    "source": ["web", "partner"], "campaign": ["q1"], "utm_source": ["google", "linkedin"],
    "utm_medium": ["cpc"], "utm_campaign": ["brand"], "utm_term": ["routing"],
    "utm_content": ["ad-1"], "external_id": ["crm-1"], "description": ["a description"],
}


def bulk_leads(n: int, seed: int, windows: frozenset[tuple[str, int]] = frozenset(),
               events: frozenset[str] = frozenset()) -> list[tuple[Lead, Snapshot]]:
    """A fast seeded stream of leads and snapshots (no hypothesis overhead), same pools."""
    rng = random.Random(seed)
    windows = windows | {(e, d) for e in EVENTS for d in (7, 14, 30, 60, 90, 365)}
    events = events | frozenset(EVENTS)
    all_windows, all_events = sorted(windows), sorted(events)

    def number(pool: list[Any], top: float, whole: bool) -> Any:
        roll = rng.random()
        if roll < 0.3:
            return None
        if roll < 0.7:
            return rng.choice(pool)
        return rng.randint(0, int(top)) if whole else rng.uniform(0, top)

    def attribute() -> Any:
        return rng.choice([None, True, False, 0, 1, -1, 2.5, 0.0, -0.0, 2**63 - 1, "student",
                           "x", "1", "true", "", rng.uniform(-1e6, 1e6), rng.randint(-9, 9),
                           rng.choice(ODD_TEXT)])

    out = []
    while len(out) < n:
        values: dict[str, Any] = {}
        for name, pool in TEXT_POOLS.items():
            roll = rng.random()
            values[name] = (None if roll < 0.45 else rng.choice(pool) if roll < 0.9
                            else rng.choice(ODD_TEXT))
        if values["country"] in ODD_TEXT:
            values["country"] = None
        values["email"] = (None if rng.random() < 0.2
                           else f"{rng.choice(LOCALS)}@{rng.choice(MAIL_DOMAINS)}")
        values["employees"] = number([0, 49, 50, 199, 200, 999, 1000, 5000], 20_000, True)
        values["annual_revenue"] = number([0.0, 1e7, 5e7, 1e8, 2.5e8], 1e9, False)
        values["budget"] = number([0.0, 4999.99, 5000.0, 25_000.0, 100_000.0], 3e5, False)
        values["timeline_days"] = number([0, 30, 31, 90, 91, 180, 365, 366], 800, True)
        values["consent"] = rng.choice([None, True, False])
        values["attributes"] = {k: attribute() for k in rng.sample(ATTR_KEYS,
                                                                    rng.randint(0, 4))}
        try:
            lead = Lead(**values)
        except (ValueError, TypeError, msgspec.ValidationError):
            continue
        counts = {w: rng.randint(0, 4) for w in all_windows if rng.random() < 0.15}
        last: dict[str, datetime.datetime] = {}
        for e in all_events:
            if rng.random() < 0.3:
                when = NOW - datetime.timedelta(days=rng.uniform(-1, 120))
                last[e] = when.replace(tzinfo=None) if rng.random() < 0.05 else when
        owner = rng.choice([*REPS, "someone-else"]) if rng.random() < 0.15 else None
        out.append((lead, Snapshot(account_owner=owner, counts=counts, last=last)))
    return out


nows = st.one_of(st.just(NOW), st.datetimes(
    min_value=datetime.datetime(2025, 1, 1), max_value=datetime.datetime(2027, 12, 31),
    timezones=st.just(datetime.UTC)))

def examples(n: int) -> settings:
    return settings(max_examples=n, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])


# -- the shipped ruleset ------------------------------------------------------------------------

def test_shipped_ruleset_is_fully_supported(shipped_engine: DurableEngine) -> None:
    described = shipped_engine.describe()
    assert sum(len(rules) for rules in described.values()) >= 90
    # everything is translated, nothing refused; function calls are the only values computed
    # before the fact is asserted
    computed = {label for rules in described.values() for r in rules for label in r["computed"]}
    assert computed and all(label.split("(", 1)[0] in {"matches", "len", "endswith", "contains",
                                                        "days_since"} for label in computed)


def test_shipped_test_cases_agree(shipped: Ruleset, shipped_engine: DurableEngine) -> None:
    cases = load_cases(RULES)
    assert len(cases) >= 50
    for case in cases:
        now = case.now or DEFAULT_NOW
        if now.tzinfo is None:
            now = now.replace(tzinfo=datetime.UTC)
        lead = lead_from_mapping(case.lead)
        assert_same(shipped, shipped_engine, lead, snapshot_for(case.state, shipped.windows, now),
                    now)


@examples(400)
@given(data=st.data())
def test_shipped_ruleset_agrees_on_generated_leads(shipped: Ruleset,
                                                   shipped_engine: DurableEngine,
                                                   data: st.DataObject) -> None:
    lead = data.draw(leads())
    assert_same(shipped, shipped_engine, lead, data.draw(snapshot_strategy(shipped)),
                data.draw(nows))


def test_shipped_ruleset_agrees_on_a_bulk_stream(shipped: Ruleset,
                                                 shipped_engine: DurableEngine) -> None:
    statuses = set()
    for lead, snapshot in bulk_leads(4000, seed=11, windows=shipped.windows,
                                     events=shipped.last_events):
        statuses.add(assert_same(shipped, shipped_engine, lead, snapshot).status)
    assert statuses == {"bad_lead", "nurture", "mql", "sql"}  # the stream reaches every status


# -- generated rulesets ---------------------------------------------------------------------------

NUM_FIELDS = ["employees", "annual_revenue", "budget", "timeline_days"]
TEXT_FIELDS = ["email", "first_name", "title", "company", "industry", "state", "authority",
               "need", "utm_source", "email_domain", "company_domain", "domain", "phone"]
BOOL_FIELDS = ["consent", "free_email", "disposable_email"]
ATTRS = ["attributes.a", "attributes.b", 'attributes["x.y"]', "attributes.persona",
         "attributes.missing"]
GEN_EVENTS = ["demo", "webinar", "pricing"]
NUM_LITS = ["0", "1", "-1", "0.5", "2.5", "30", "50", "90", "200", "1000", "5000", "25000",
            "100000", "1000000", "1000000000000000", "-0.0", "1e3"]
TEXT_LITS = ["", "a", "x", "VP", "vp of sales", "Software", "gmail.com", "acme.example",
             "student", "1", "true", "Acme", "CA"]
PATTERNS = ["(?i)vp", "^[A-Z]", r"(?i)\b(ceo|cto)\b", r"\d+", "a|b", "^$", "@acme",
            "(?i)^(test|asdf)", r"^\s*x+\s*$"]


class Ctx:
    """What an expression in a given stage may use, with literals the loader accepts."""

    STAGES = ("scoring", "qualification", "territories", "segments", "assignment", "sla")

    def __init__(self, stage: str, hits: list[str], grades: list[str], territories: list[str],
                 segments: list[str], pools: list[str]) -> None:
        self.stage = self.STAGES.index(stage)
        self.hits, self.grades = hits, grades
        self.territories, self.segments, self.pools = territories, segments, pools

    def domain_fields(self) -> dict[str, list[str]]:
        fields = {"country": ["US", "DE", "GB", "AU", "BR", "CU", "JP"],
                  "region": list(REGIONS), "account_owner": REPS}
        if self.stage >= 1:
            fields["grade"] = self.grades
        if self.stage >= 2:
            fields["status"] = ["bad_lead", "nurture", "mql", "sql"]
        if self.stage >= 3:
            fields["territory"] = self.territories
        if self.stage >= 4:
            fields["segment"] = self.segments
        if self.stage >= 5:
            fields["pool"] = self.pools
            fields["queue"] = ["q0", "unassigned"]
        return fields

    def num_names(self) -> list[str]:
        return NUM_FIELDS + (["score", "fit", "bant", "engagement"] if self.stage >= 1 else [])


def q(text: str) -> str:
    return json.dumps(text)


@st.composite
def num_operand(draw: Any, ctx: Ctx, depth: int = 0) -> str:
    choices = ["field", "field", "count", "len", "days", "attr"]
    if depth < 2:
        choices += ["arith", "neg", "ifexp"]
    kind = draw(st.sampled_from(choices))
    if kind == "field":
        return draw(st.sampled_from(ctx.num_names()))
    if kind == "count":
        event, days = draw(st.sampled_from(GEN_EVENTS)), draw(st.sampled_from([7, 30]))
        return f"count({q(event)}, days={days})"
    if kind == "len":
        return f"len({draw(st.sampled_from(TEXT_FIELDS + ATTRS))})"
    if kind == "days":
        return f'days_since(last({q(draw(st.sampled_from(GEN_EVENTS)))}))'
    if kind == "attr":
        return draw(st.sampled_from(ATTRS))
    if kind == "neg":
        return f"-{draw(num_operand(ctx, depth + 1))}"
    if kind == "ifexp":
        return (f"({draw(num_operand(ctx, depth + 1))} if {draw(condition(ctx, 2))} "
                f"else {draw(st.sampled_from(NUM_LITS))})")
    op = draw(st.sampled_from(["+", "-", "*", "/", "//", "%"]))
    right = draw(st.one_of(num_operand(ctx, depth + 1), st.sampled_from(NUM_LITS)))
    return f"({draw(num_operand(ctx, depth + 1))} {op} {right})"


@st.composite
def text_operand(draw: Any, ctx: Ctx) -> str:
    kind = draw(st.sampled_from(["field", "field", "lower", "upper", "domain", "concat", "or"]))
    field = draw(st.sampled_from(TEXT_FIELDS))
    if kind == "field":
        return field
    if kind == "concat":
        return f"({field} + {q(draw(st.sampled_from(TEXT_LITS)))})"
    if kind == "or":
        return f"({field} or {draw(st.sampled_from(TEXT_FIELDS))})"
    return f"{kind}({field})"


@st.composite
def atom(draw: Any, ctx: Ctx) -> str:
    kinds = ["num", "num", "num_chain", "num_num", "text", "text_in", "null", "bool", "attr",
             "attr_in", "attr_attr", "attr_truth", "matches", "textfn", "emailfn", "region",
             "time", "contains", "domain", "literal"]
    if ctx.stage >= 1:
        kinds += ["hit", "hit", "domain", "domain"]
    kind = draw(st.sampled_from(kinds))
    ops = ["<", "<=", ">", ">=", "==", "!="]
    if kind == "num":
        left, right = draw(num_operand(ctx)), draw(st.sampled_from(NUM_LITS))
        if draw(st.booleans()):
            left, right = right, left
        return f"{left} {draw(st.sampled_from(ops))} {right}"
    if kind == "num_chain":
        lo, hi = sorted(draw(st.lists(st.sampled_from(NUM_LITS[:14]), min_size=2, max_size=2)),
                        key=float)
        return f"{lo} <= {draw(st.sampled_from(ctx.num_names()))} < {hi}"
    if kind == "num_num":
        return (f"{draw(num_operand(ctx, 1))} {draw(st.sampled_from(ops))} "
                f"{draw(num_operand(ctx, 1))}")
    if kind == "text":
        op = draw(st.sampled_from(["==", "!="]))
        return f"{draw(text_operand(ctx))} {op} {q(draw(st.sampled_from(TEXT_LITS)))}"
    if kind == "text_in":
        items = draw(st.lists(st.sampled_from(TEXT_LITS), min_size=1, max_size=6))
        op = draw(st.sampled_from(["in", "not in"]))
        return f"{draw(st.sampled_from(TEXT_FIELDS))} {op} [{', '.join(map(q, items))}]"
    if kind == "null":
        names = (ctx.num_names() + TEXT_FIELDS + BOOL_FIELDS + ATTRS
                 + list(ctx.domain_fields()) + ['last("demo")'])
        return f"{draw(st.sampled_from(names))} {draw(st.sampled_from(['==', '!=']))} null"
    if kind == "bool":
        field = draw(st.sampled_from(BOOL_FIELDS))
        form = draw(st.sampled_from(["{}", "not {}", "{} == true", "{} != false",
                                     "{} == false"]))
        return form.format(field)
    if kind in ("attr", "attr_truth"):
        attr = draw(st.sampled_from(ATTRS))
        if kind == "attr_truth":
            return draw(st.sampled_from([attr, f"not {attr}"]))
        lit = draw(st.sampled_from(["1", "0", "2.5", "-1", '"x"', '"student"', '"1"', "true",
                                    "false", "null", '""']))
        op = draw(st.sampled_from(ops if lit[0].isdigit() or lit[0] == "-" else ["==", "!="]))
        return f"{attr} {op} {lit}"
    if kind == "attr_in":
        items = draw(st.lists(st.sampled_from(["1", "0", "2.5", '"x"', '"student"', "true",
                                               "false", "null"]), min_size=1, max_size=5))
        op = draw(st.sampled_from(["in", "not in"]))
        return f"{draw(st.sampled_from(ATTRS))} {op} [{', '.join(items)}]"
    if kind == "attr_attr":
        a, b = draw(st.lists(st.sampled_from(ATTRS), min_size=2, max_size=2))
        return f"{a} {draw(st.sampled_from(['==', '!=']))} {b}"
    if kind == "matches":
        subject = draw(st.sampled_from(TEXT_FIELDS + ATTRS))
        return f"matches({subject}, {q(draw(st.sampled_from(PATTERNS)))})"
    if kind == "textfn":
        fn = draw(st.sampled_from(["contains", "startswith", "endswith"]))
        return f"{fn}({draw(text_operand(ctx))}, {q(draw(st.sampled_from(TEXT_LITS)))})"
    if kind == "emailfn":
        fn = draw(st.sampled_from(["is_free_email", "is_disposable_email"]))
        arg = draw(st.sampled_from(["email", "domain", "email_domain", "attributes.a"]))
        return draw(st.sampled_from([f"{fn}({arg})", f"not {fn}({arg})"]))
    if kind == "region":
        op, region = draw(st.sampled_from(["==", "!="])), draw(st.sampled_from(list(REGIONS)))
        return f"region(country) {op} {q(region)}"
    if kind == "time":
        a, b = draw(st.lists(st.sampled_from(GEN_EVENTS), min_size=2, max_size=2))
        right = draw(st.sampled_from([f'last({q(b)})', "now"]))
        return f'last({q(a)}) {draw(st.sampled_from(ops))} {right}'
    if kind == "contains":
        # `"x" not in text` with a missing text is left out: the engines disagree on it (see
        # test_known_divergence_not_in_a_missing_text below)
        hay = draw(st.sampled_from(TEXT_FIELDS + ATTRS))
        return draw(st.sampled_from([f"{q(draw(st.sampled_from(TEXT_LITS)))} in {hay}",
                                     f"{hay} in {q(draw(st.sampled_from(TEXT_LITS)))}"]))
    if kind == "domain":
        field, values = draw(st.sampled_from(sorted(ctx.domain_fields().items())))
        if not values:
            return "true"
        form = draw(st.sampled_from(["eq", "in"]))
        if form == "eq":
            op = draw(st.sampled_from(["==", "!="]))
            return f"{field} {op} {q(draw(st.sampled_from(values)))}"
        items = draw(st.lists(st.sampled_from(values), min_size=1, max_size=4))
        return f"{field} {draw(st.sampled_from(['in', 'not in']))} [{', '.join(map(q, items))}]"
    if kind == "hit":
        rule = q(draw(st.sampled_from(ctx.hits)))
        return draw(st.sampled_from([f"hit({rule})", f"not hit({rule})", f"hit({rule}) == true"]))
    return draw(st.sampled_from(["true", "false", "1 < 2", "null == null", '"a" == "b"']))


@st.composite
def condition(draw: Any, ctx: Ctx, depth: int = 0) -> str:
    if depth >= 2 or draw(st.integers(0, 2)) == 0:
        return draw(atom(ctx))
    kind = draw(st.sampled_from(["and", "or", "not"]))
    if kind == "not":
        return f"not ({draw(condition(ctx, depth + 1))})"
    parts = draw(st.lists(condition(ctx, depth + 1), min_size=2, max_size=3))
    return f" {kind} ".join(f"({p})" for p in parts)


@st.composite
def rulesets(draw: Any) -> dict[str, Any]:
    n_scoring = draw(st.integers(1, 6))
    hits = [f"s{i}" for i in range(n_scoring)]
    grades = {"A": 60, "B": 30, "C": draw(st.sampled_from([0, 5, -10]))}
    territories = [f"t{i}" for i in range(draw(st.integers(1, 3)))]
    segments = [f"g{i}" for i in range(draw(st.integers(1, 3)))]
    pools = ["p0", "p1"]

    def ctx(stage: str) -> Ctx:
        return Ctx(stage, hits, list(grades), territories, segments, pools)

    scoring: dict[str, list[dict[str, Any]]] = {"fit": [], "bant": [], "engagement": []}
    for rid in hits:
        scoring[draw(st.sampled_from(list(scoring)))].append(
            {"id": rid, "when": draw(condition(ctx("scoring"))),
             "points": draw(st.sampled_from([-20, -5, 0, 5, 10, 25, 2.5]))})

    def first(stage: str, ids: list[str], extra: Any) -> list[dict[str, Any]]:
        rules = [{"id": rid, "when": draw(condition(ctx(stage))), **extra(rid)} for rid in ids]
        if draw(st.booleans()):
            rules.append({"id": f"{stage}-default", "when": "true", **extra(None)})
        return rules

    def target(_: Any) -> dict[str, Any]:
        return draw(st.sampled_from([{"pool": "p0"}, {"pool": "p1"}, {"queue": "q0"},
                                     {"owner": "bob"}, {"assign": "account_owner"}]))

    return {
        "scoring": {k: v for k, v in scoring.items() if v},
        "grades": grades,
        "qualification": [{"id": f"q{i}", "when": draw(condition(ctx("qualification"))),
                           "status": draw(st.sampled_from(["bad_lead", "nurture", "mql", "sql"]))}
                          for i in range(draw(st.integers(1, 3)))],
        "territories": first("territories", territories, lambda _: {}),
        "segments": first("segments", segments, lambda _: {}),
        "reps": [{"id": r} for r in REPS],
        "pools": {p: {"strategy": "round_robin", "members": ["alice", "bob"]} for p in pools},
        "assignment": first("assignment", [f"a{i}" for i in range(draw(st.integers(1, 3)))],
                            target),
        "sla": first("sla", [f"sla{i}" for i in range(draw(st.integers(0, 2)))],
                     lambda _: {"accept_within": "5m"}),
    }


def load_generated(doc: dict[str, Any]) -> Ruleset:
    try:
        return load_texts({"generated.yaml": json.dumps(doc)})
    except RulesetError as exc:  # the generator aims for valid rules; say what it got wrong
        raise AssertionError(f"generated ruleset refused by the loader: {exc}") from exc


@examples(60)
@given(data=st.data())
def test_generated_rulesets_agree(data: st.DataObject) -> None:
    """Generated rulesets x a few hypothesis leads (odd values, shrinkable) and a seeded stream."""
    ruleset = load_generated(data.draw(rulesets(), label="ruleset"))
    try:
        engine = DurableEngine(ruleset)
    except DurableUnsupported as exc:
        # The generator can nest a condition past durable-rules' documented size limit (31
        # expression slots per rule: refused at load, tested above); nothing to compare there.
        if not all("expression slots" in p for p in exc.problems):
            raise
        reject()
    with engine:
        for _ in range(3):
            lead = data.draw(leads(), label="lead")
            snapshot = data.draw(snapshot_strategy(ruleset), label="snapshot")
            assert_same(ruleset, engine, lead, snapshot, data.draw(nows, label="now"))
        seed = data.draw(st.integers(0, 2**32), label="stream seed")
        for lead, snapshot in bulk_leads(40, seed, ruleset.windows, ruleset.last_events):
            assert_same(ruleset, engine, lead, snapshot)


# -- the oracle has teeth ---------------------------------------------------------------------

TEETH_RULES = """
scoring:
  fit:
    - {id: fit.big, when: "attributes.seats >= 0", points: 10}
    - {id: fit.some, when: "employees >= 1", points: 5}
qualification:
  - {status: sql, when: "score >= 10"}
"""


def first_mismatch(ruleset: Ruleset, engine: DurableEngine, n: int) -> list[str]:
    for lead, snapshot in bulk_leads(n, seed=3):
        diff = mismatch(ruleset, engine, lead, snapshot, NOW)
        if diff:
            return [f"lead attributes={lead.attributes} employees={lead.employees}", *diff]
    return []


def test_a_semantic_difference_in_the_compiled_engine_is_detected(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the compiled `>=` treat null as 0 (a plausible bug); the oracle must notice."""
    clean = load_texts({"scoring.yaml": TEETH_RULES})
    with DurableEngine(clean) as engine:
        assert first_mismatch(clean, engine, 500) == []  # agree before the change

    def ge_null_as_zero(a: Any, b: Any) -> bool:
        return bool((0 if a is None else a) >= (0 if b is None else b))

    # Compiled stages bind the runtime helpers when they are compiled: patch, then load.
    monkeypatch.setitem(RUNTIME, "_ge", ge_null_as_zero)
    broken = load_texts({"scoring.yaml": TEETH_RULES})
    with DurableEngine(broken) as engine:
        found = first_mismatch(broken, engine, 500)
    assert found, "the durable-rules oracle did not notice that null >= 0 became true"
    assert any(line.startswith("matched:") for line in found)
    print("\n".join(found))


def test_a_changed_derived_shortcut_in_the_compiler_is_detected(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiler reads is_free_email(email) from a precomputed field; point it elsewhere."""
    source = """
scoring:
  fit:
    - {id: fit.free, when: "is_free_email(email)", points: -15}
"""
    monkeypatch.setitem(expr_module._DERIVED_CALLS, ("is_free_email", "email"),
                        "disposable_email")
    ruleset = load_texts({"scoring.yaml": source})
    with DurableEngine(ruleset) as engine:
        assert first_mismatch(ruleset, engine, 300)


# -- known divergences (found by this oracle; strict: they fail once the engines agree) --------

def engines_agree(rules: str, leads: list[Lead]) -> bool:
    ruleset = load_texts({"r.yaml": rules})
    with DurableEngine(ruleset) as engine:
        return all(not mismatch(ruleset, engine, lead, Snapshot(), NOW) for lead in leads)


def test_engines_agree_not_in_a_missing_text() -> None:
    assert engines_agree("""
segments:
  - {id: no-vp, when: '"vp" not in title'}
""", [Lead(), Lead(title="CTO"), Lead(title="vp sales")])


def test_engines_agree_typed_boolean_in_a_mixed_list() -> None:
    assert engines_agree("""
segments:
  - {id: odd, when: 'consent in [1, "x"]'}
""", [Lead(consent=True), Lead(consent=False), Lead()])


# -- what is refused --------------------------------------------------------------------------

def test_unsupported_rules_are_refused_at_load_with_every_rule_named() -> None:
    big = " and ".join(f"(employees > {i} or (budget < {i} and employees == budget))"
                       for i in range(9))
    many = [{"id": f"s{i}", "when": f"attributes.a{i} == {i}", "points": 1} for i in range(260)]
    ruleset = load_texts({"rules.yaml": json.dumps({
        "scoring": {"fit": [{"id": "fit.ok", "when": "employees >= 10", "points": 1}, *many]},
        "territories": [{"id": "ok", "when": "employees > 1 or budget > 2"},
                        {"id": "huge", "when": big}],
    })})
    with pytest.raises(DurableUnsupported) as caught:
        DurableEngine(ruleset)
    problems = caught.value.problems
    assert len(problems) == 2, problems
    assert problems[0].startswith("scoring: the scoring rules read 261 different values")
    assert problems[1].startswith("territories:huge (rules.yaml:")
    assert "expression slots" in problems[1] and "31" in problems[1]
    assert "territories:ok" not in str(caught.value)


def test_text_ordering_is_computed_first_not_left_to_durable_rules() -> None:
    """durable-rules orders text with strncmp over raw JSON ("US" < "US!" is false there)."""
    ruleset = load_texts({"r.yaml": """
segments:
  - {id: before, when: 'state < "US!"'}
  - {id: pair, when: "attributes.a > attributes.b"}
"""})
    with DurableEngine(ruleset) as engine:
        assert engine.describe()["segments"][0]["computed"] == [
            "state < 'US!' (text ordering)"]
        for lead in (Lead(state="US"), Lead(state="USA"), Lead(attributes={"a": "b", "b": "a"}),
                     Lead(attributes={"a": 2, "b": 1}), Lead(attributes={"a": "2", "b": 1})):
            assert_same(ruleset, engine, lead, Snapshot())


def test_a_plugin_function_without_an_implementation_is_refused() -> None:
    from router.engine.functions import BUILTINS, Function

    functions = {**BUILTINS, "vip": Function(name="vip", impl=None, params=("text",),
                                             returns="boolean", doc="", example="")}
    ruleset = load_texts({"r.yaml": """
segments:
  - {id: vip, when: "vip(email)"}
"""}, functions=functions)
    with pytest.raises(DurableUnsupported, match=r"segments:vip .*function `vip`"):
        DurableEngine(ruleset, functions=functions)


def test_a_plugin_function_is_computed_first_and_its_errors_match_the_compiler() -> None:
    from router.engine.functions import BUILTINS, Function

    def tier(value: Any) -> Any:
        if value == "boom":
            raise RuntimeError("plugin failure")
        return {"gold": 3, "silver": 2}.get(value)

    functions = {**BUILTINS, "tier": Function(name="tier", impl=tier, params=("any",),
                                              returns="number", doc="", example="")}
    ruleset = load_texts({"r.yaml": """
scoring:
  fit:
    - {id: gold, when: "tier(attributes.plan) >= 3", points: 10}
    - {id: known, when: "tier(attributes.plan) != null", points: 1}
segments:
  - {id: first, when: "tier(attributes.plan) == 2"}
  - {id: rest, when: "true"}
"""}, functions=functions)
    with DurableEngine(ruleset, functions=functions) as engine:
        for plan in ("gold", "silver", "bronze", "boom", None):
            got = assert_same(ruleset, engine, Lead(attributes={"plan": plan}), Snapshot())
            assert bool(got.errors) == (plan == "boom")


# -- engine choice, memory, robustness --------------------------------------------------------

def test_the_engine_is_picked_by_name(shipped: Ruleset) -> None:
    lead = Lead(email="jane@acme.example", title="VP Sales", employees=5000, country="US",
                state="CA")
    compiled = find_backend("compiled")(shipped)
    durable = find_backend("durable")(shipped)
    ev = evaluate(shipped, lead, now=NOW)
    assert compiled(lead, now=NOW) == durable(lead, now=NOW) == ev
    assert explain(shipped, durable(lead, now=NOW)) == explain(shipped, ev)
    with pytest.raises(BackendRefused, match=r"rule engine `drools`.*LEADROUTER_ENGINE=compiled"):
        find_backend("drools")
    assert durable_unavailable() is None


def _rss_kib() -> int:
    statm = Path("/proc/self/statm")
    if not statm.exists():
        pytest.skip("resident memory is read from /proc (Linux)")
    return int(statm.read_text().split()[1]) * (resource.getpagesize() // 1024)


def test_facts_are_retracted_and_memory_stays_flat(shipped: Ruleset) -> None:
    stream = bulk_leads(1000, seed=5)
    with DurableEngine(shipped) as engine:
        for lead, snapshot in stream:  # warm up: caches, allocator pools
            engine.evaluate(lead, snapshot, now=NOW)
        gc.collect()
        before = _rss_kib()
        for i in range(10_000):
            lead, snapshot = stream[i % len(stream)]
            engine.evaluate(lead, snapshot, now=NOW)
            if i % 1000 == 0:
                assert engine.facts_held() == 0
        gc.collect()
        grown = _rss_kib() - before
        assert engine.facts_held() == 0
    assert grown < 2048, f"RSS grew by {grown} KiB over 10,000 leads"


def test_leads_do_not_leak_into_each_other(shipped: Ruleset,
                                           shipped_engine: DurableEngine) -> None:
    """The same lead gives the same answer whatever came before it (and as the first lead)."""
    probe = Lead(email="a@mailinator.com", company=None)
    fresh = DurableEngine(shipped)
    first = fresh.evaluate(probe, now=NOW)
    for lead, snapshot in bulk_leads(50, seed=9):
        fresh.evaluate(lead, snapshot, now=NOW)
    assert fresh.evaluate(probe, now=NOW) == first == evaluate(shipped, probe, now=NOW)


def test_decayed_engagement_points_join_the_score_on_both_engines() -> None:
    from router.engine.engagement import Activity, TypeActivity

    ruleset = load_texts({"r.yaml": """
engagement:
  half_life: 14d
  events:
    demo_requested: {points: 30}
    webinar_attended: {points: 10, cap: 25}
scoring:
  fit:
    - {id: fit.big, when: "employees >= 1000", points: 25}
qualification:
  - {status: mql, when: "score >= 50 and engagement > 20"}
  - {status: nurture, when: "true"}
"""})
    ms = int(NOW.timestamp() * 1000)
    day = 86_400_000
    activities = [Activity(), Activity(types={"demo_requested": TypeActivity(n=1, times=(ms,))}),
                  Activity(types={"demo_requested": TypeActivity(n=1, times=(ms - 14 * day,)),
                                  "webinar_attended": TypeActivity(
                                      n=4, times=(ms - day, ms - 2 * day, ms - 3 * day, ms))})]
    statuses = set()
    with DurableEngine(ruleset) as engine:
        for activity in activities:
            for employees in (None, 5000):
                got = assert_same(ruleset, engine, Lead(employees=employees),
                                  Snapshot(activity=activity))
                statuses.add(got.status)
    assert statuses == {"mql", "nurture"}


def test_an_empty_ruleset_and_extra_contributions() -> None:
    from leadrouter_sdk import Contribution

    ruleset = load_texts({"r.yaml": "grades: {A: 10}\n"})
    extra = (Contribution(rule="plugin.x", group="fit", points=12.0),)
    with DurableEngine(ruleset) as engine:
        a = evaluate(ruleset, Lead(), now=NOW, extra=extra)
        assert engine.evaluate(Lead(), now=NOW, extra=extra) == a
        assert a.score.grade == "A"
