"""The fused whole-ruleset function agrees with running the stage functions one by one.

``evaluate()`` runs one generated function for all stages (router/engine/_fused.py); each stage
also has its own compiled function (``Stage.fn``) reading a plain env dict. This test runs the
staged path by hand — the straightforward way to evaluate — and requires identical results on
varied leads, including plugin contributions and every kind of snapshot.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from leadrouter_sdk import Contribution, Lead

from router.engine.evaluate import Snapshot, build_env, evaluate
from router.engine.loader import load_directory
from router.engine.ruleset import Ruleset

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "loadtests"))
from bench_engine import synthetic_leads

RULES = Path(__file__).resolve().parents[2] / "rules"
NOW = dt.datetime(2026, 11, 24, 15, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def ruleset() -> Ruleset:
    rs: Ruleset = load_directory(RULES)
    return rs


def staged(rs: Ruleset, lead: Lead, snap: Snapshot,
           extra: tuple[Contribution, ...] = ()) -> dict[str, Any]:
    env = build_env(lead, snap, NOW)
    hits, _ = rs.scoring.fn(env)
    groups = {"fit": 0.0, "bant": 0.0, "engagement": 0.0}
    contributions = [rs.scoring.rules[i].contribution for i in hits]
    total = 0.0
    for c in [*contributions, *extra]:
        assert c is not None
        total += c.points
        if c.group in groups:
            groups[c.group] += c.points
    grade = next((g for g, t in rs.grades if total >= t), None)
    env.update(fit=groups["fit"], bant=groups["bant"], engagement=groups["engagement"],
               score=total, grade=grade, _hits={c.rule for c in contributions if c})
    out: dict[str, Any] = {"hits": [c.rule for c in contributions if c], "total": total,
                           "grade": grade, **groups}
    q, _ = rs.qualification.fn(env)
    env["status"] = rs.qualification.rules[q].status if q >= 0 else "nurture"
    t, _ = rs.territories.fn(env)
    env["territory"] = rs.territories.rules[t].id if t >= 0 else None
    s, _ = rs.segments.fn(env)
    env["segment"] = rs.segments.rules[s].id if s >= 0 else None
    a, _ = rs.assignment.fn(env)
    rule = rs.assignment.rules[a] if a >= 0 else None
    env["pool"] = rule.target if rule and rule.target_kind == "pool" else None
    env["queue"] = (rule.target if rule and rule.target_kind == "queue" else
                    None if rule else "unassigned")
    p, _ = rs.sla.fn(env)
    out.update(decided=(q, t, s, a, p), status=env["status"])
    return out


def fused(rs: Ruleset, lead: Lead, snap: Snapshot,
          extra: tuple[Contribution, ...] = ()) -> dict[str, Any]:
    ev = evaluate(rs, lead, snap, now=NOW, extra=extra)
    sc = ev.score
    return {"hits": [c.rule for c in sc.contributions if c not in extra], "total": sc.total,
            "grade": sc.grade, "fit": sc.fit, "bant": sc.bant, "engagement": sc.engagement,
            "decided": ev.decided, "status": ev.status}


def test_fused_equals_staged_on_benchmark_leads(ruleset: Ruleset) -> None:
    leads = synthetic_leads(3000, seed=3)
    assert len({fused(ruleset, lead, snap)["status"] for lead, snap in leads}) >= 3
    for lead, snap in leads:
        assert fused(ruleset, lead, snap) == staged(ruleset, lead, snap), lead


def test_fused_adds_plugin_contributions_to_groups_and_total(ruleset: Ruleset) -> None:
    lead, snap = synthetic_leads(1, seed=9)[0]
    extra = (Contribution(rule="plugin.a", group="fit", points=7.0),
             Contribution(rule="plugin.b", group="firmographics", points=-2.5))
    with_extra = fused(ruleset, lead, snap, extra)
    assert with_extra == staged(ruleset, lead, snap, extra)
    assert with_extra["total"] == pytest.approx(fused(ruleset, lead, snap)["total"] + 4.5)


texts = st.one_of(st.none(), st.text(max_size=30),
                  st.sampled_from(["VP Sales", "Student", "Head of IT", "info", "CEO"]))
numbers = st.one_of(st.none(), st.integers(min_value=0, max_value=10**7))
leads = st.builds(
    Lead,
    email=st.one_of(st.none(), st.sampled_from(["a@gmail.com", "info@acme.example",
                                                "x@mailinator.com", "jo@uni.edu",
                                                "test1@corp.example"])),
    title=texts, company=texts, industry=texts, employees=numbers,
    annual_revenue=st.one_of(st.none(), st.floats(min_value=0, max_value=1e10)),
    budget=st.one_of(st.none(), st.floats(min_value=0, max_value=1e7)),
    timeline_days=numbers, country=st.one_of(st.none(), st.sampled_from(
        ["US", "CA", "DE", "GB", "BR", "SG", "AU", "IR", "FR", "MX"])),
    state=st.one_of(st.none(), st.sampled_from(["CA", "NY", "TX", "BY", "ON", "WA"])),
    authority=texts, need=texts, phone=st.one_of(st.none(), st.just("+14155550100")),
    attributes=st.dictionaries(st.sampled_from(["competitor", "plan"]),
                               st.one_of(st.booleans(), st.text(max_size=5)), max_size=2),
)
snapshots = st.builds(
    Snapshot,
    account_owner=st.one_of(st.none(), st.sampled_from(["alice", "bob"])),
    counts=st.dictionaries(st.tuples(st.sampled_from(
        ["demo_requested", "pricing_page_viewed", "email_clicked", "page_viewed"]),
        st.sampled_from([14, 30, 60, 90])), st.integers(0, 5), max_size=6),
    last=st.dictionaries(st.sampled_from(["page_viewed", "webinar_attended"]),
                         st.datetimes(min_value=dt.datetime(2026, 1, 1),
                                      max_value=dt.datetime(2026, 11, 24),
                                      timezones=st.just(dt.UTC)), max_size=2),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lead=leads, snap=snapshots)
def test_fused_equals_staged_on_generated_leads(lead: Lead, snap: Snapshot) -> None:
    rs: Ruleset = load_directory_cached()
    assert fused(rs, lead, snap) == staged(rs, lead, snap)


_CACHE: list[Ruleset] = []


def load_directory_cached() -> Ruleset:
    if not _CACHE:
        _CACHE.append(load_directory(RULES))
    return _CACHE[0]


def test_a_first_match_chain_that_raises_runs_again_rule_by_rule() -> None:
    import ast

    from router.engine._fused import _first_match
    from router.engine.functions import BUILTINS

    calls: list[int] = []

    def boom() -> bool:
        calls.append(1)
        raise RuntimeError("unexpected")

    def call(name: str) -> ast.expr:
        return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=[], keywords=[])

    tests: list[ast.expr] = [ast.Constant(value=False), call("boom"), ast.Constant(value=True)]
    body = [ast.Assign(targets=[ast.Name(id="_x", ctx=ast.Store())],
                       value=ast.List(elts=[], ctx=ast.Load())),
            *_first_match("_i", "sla", tests, BUILTINS),
            ast.Return(value=ast.Tuple(elts=[ast.Name(id="_i", ctx=ast.Load()),
                                             ast.Name(id="_x", ctx=ast.Load())],
                                       ctx=ast.Load()))]
    fdef = ast.FunctionDef(name="f", args=ast.arguments(
        posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None,
        defaults=[]), body=body, decorator_list=[], returns=None)
    if sys.version_info >= (3, 12):
        fdef.type_params = []
    module = ast.fix_missing_locations(ast.Module(body=[fdef], type_ignores=[]))
    namespace: dict[str, Any] = {"boom": boom, "Exception": Exception}
    exec(compile(module, "<test>", "exec"), namespace)
    # the raising rule counts as not matching and is reported; the next one decides
    assert namespace["f"]() == (2, [("sla", 1)])
    assert len(calls) == 2  # once in the chain, once when re-run guarded
