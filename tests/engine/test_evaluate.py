"""Pure evaluation of a lead (router.engine.evaluate): stage policies, score arithmetic, grades,
routes, SLA policies, engagement state, explanations, errors and purity."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from leadrouter_sdk import Contribution, Lead

from router.engine.evaluate import Evaluation, Snapshot, build_env, evaluate, explain
from router.engine.functions import BOOL, BUILTINS, STR, Function
from router.engine.loader import load_texts

NOW = datetime.datetime(2026, 3, 10, 12, 0, tzinfo=datetime.UTC)

SCORING = r"""
scoring:
  fit:
    - {id: fit.big, when: "employees >= 1000", points: 25}
    - {id: fit.mid, when: "employees >= 100", points: 10}
    - {id: fit.free, when: "is_free_email(email)", points: -20}
  bant:
    - {id: bant.budget, when: "budget >= 50000", points: 20}
    - {id: bant.vp, when: 'matches(title, "(?i)\\bvp\\b")', points: 15}
  engagement:
    - {id: eng.demo, when: 'count("demo", days=30) >= 1', points: 30}
    - {id: eng.webinar, when: 'days_since(last("webinar")) <= 7', points: 5}
grades: {A: 80, B: 50, C: 20, D: 0}
qualification:
  - {status: bad_lead, when: "is_disposable_email(email)"}
  - {status: sql, when: 'score >= 80 and hit("bant.vp")'}
  - {status: mql, when: "score >= 50"}
"""
ROUTING = """
territories:
  - {id: na, when: 'region == "NA"'}
  - {id: us, when: 'country == "US"'}
  - {id: emea, when: 'region == "EMEA"'}
segments:
  - {id: enterprise, when: "employees >= 1000"}
  - {id: smb, when: "employees >= 1"}
pools:
  na-ent: {strategy: round_robin, members: [alice, bob]}
assignment:
  - {id: owner, when: 'status != "bad_lead"', assign: account_owner}
  - {id: bad, when: 'status == "bad_lead"', queue: junk}
  - {id: na-ent, when: 'territory == "na" and segment == "enterprise"', pool: na-ent}
  - {id: emea-rep, when: 'territory == "emea"', owner: carol}
"""
REPS = "reps: [{id: alice}, {id: bob}, {id: carol}]\n"
SLA = """
sla:
  - {id: hot, when: 'status == "sql"', accept_within: 5m}
  - {id: warm, when: 'status in ["sql", "mql"]', accept_within: 1h}
"""
FILES = {"scoring.yaml": SCORING, "routing.yaml": ROUTING, "reps.yaml": REPS, "sla.yaml": SLA}
RULES = load_texts(FILES)

BIG = dict(email="ann@acme.com", employees=5000, budget=60000.0, title="VP Sales",
           country="US")


def run(snapshot: Snapshot | None = None, now: datetime.datetime = NOW, rules: Any = RULES,
        extra: tuple[Contribution, ...] = (), **fields: Any) -> Evaluation:
    return evaluate(rules, Lead(**fields), snapshot, now=now, extra=extra)


def test_scoring_collects_every_matching_rule() -> None:
    ev = run(**BIG)
    assert [c.rule for c in ev.score.contributions] == ["fit.big", "fit.mid", "bant.budget",
                                                        "bant.vp"]
    assert (ev.score.fit, ev.score.bant, ev.score.engagement) == (35, 35, 0)
    assert (ev.score.total, ev.score.grade) == (70, "B")
    assert ev.matched[:4] == ("fit.big", "fit.mid", "bant.budget", "bant.vp")


@pytest.mark.parametrize("fields", [
    {}, BIG, {"email": "jo@gmail.com", "employees": 150},
    {"email": "x@mailinator.com", "title": "vp"}, {"employees": 2000, "budget": 1.0},
])
@pytest.mark.parametrize("extra", [(), (Contribution(rule="plugin", group="bant", points=2.5),
                                        Contribution(rule="p2", group="fit", points=-1.0))])
def test_contributions_sum_to_the_total_and_group_totals(
        fields: dict[str, Any], extra: tuple[Contribution, ...]) -> None:
    ev = run(Snapshot(counts={("demo", 30): 2}), extra=extra, **fields)
    sc = ev.score
    assert sum(c.points for c in sc.contributions) == pytest.approx(sc.total)
    for group in ("fit", "bant", "engagement"):
        assert sum(c.points for c in sc.contributions if c.group == group) == \
            pytest.approx(getattr(sc, group))
    assert sc.fit + sc.bant + sc.engagement == pytest.approx(sc.total)
    assert set(extra) <= set(sc.contributions)


@pytest.mark.parametrize(("points", "grade"), [
    (80, "A"), (200, "A"), (79.99, "B"), (50, "B"), (49.5, "C"), (20, "C"), (19, "D"),
    (0, "D"), (-0.5, None), (-100, None),
])
def test_grade_thresholds_and_boundaries(points: float, grade: str | None) -> None:
    ev = run(extra=(Contribution(rule="x", group="fit", points=points),))
    assert (ev.score.total, ev.score.grade) == (points, grade)


def test_default_status_is_nurture_when_no_qualification_rule_matches() -> None:
    ev = run(employees=5)
    assert ev.status == "nurture" and ev.decided[0] == -1
    assert explain(RULES, ev)[2].detail == "none of 3 rules matched; default status nurture"


def test_qualification_is_first_match() -> None:
    assert run(**BIG, snapshot=Snapshot(counts={("demo", 30): 1})).status == "sql"  # 100 pts
    assert run(**BIG).status == "mql"  # 70 points: sql needs 80
    # disposable wins although the score would make it an SQL
    bad = run(**{**BIG, "email": "x@mailinator.com"}, snapshot=Snapshot(counts={("demo", 30): 1}))
    assert (bad.status, bad.decided[0]) == ("bad_lead", 0)


def test_territory_and_segment_are_first_match() -> None:
    ev = run(**BIG)
    assert (ev.territory, ev.segment) == ("na", "enterprise")  # "us" also matches, later
    assert run(country="DE", employees=3).territory == "emea"
    assert run(country="JP", employees=3).segment == "smb"
    ev = run(country="JP")
    assert (ev.territory, ev.segment, ev.decided[1:3]) == (None, None, (-1, -1))


def test_account_owner_applies_only_when_the_snapshot_has_an_owner() -> None:
    ev = run(Snapshot(account_owner="alice"), **BIG)
    assert (ev.route.kind, ev.route.target, ev.route.rule) == ("account_owner", "alice", "owner")
    assert ev.route.reason == "acme.com is an account owned by alice"
    ev = run(**BIG)  # no owner: the rule does not match, the next one routes
    assert (ev.route.kind, ev.route.target, ev.route.rule) == ("pool", "na-ent", "na-ent")


@pytest.mark.parametrize(("fields", "kind", "target", "rule"), [
    (BIG, "pool", "na-ent", "na-ent"),
    ({"country": "DE"}, "owner", "carol", "emea-rep"),
    ({"email": "x@mailinator.com", "country": "DE"}, "queue", "junk", "bad"),
    ({"country": "JP"}, "queue", "unassigned", None),
])
def test_route_kinds_and_the_default_queue(fields: dict[str, Any], kind: str,
                                           target: str, rule: str | None) -> None:
    ev = run(**fields)
    assert (ev.route.kind, ev.route.target, ev.route.rule) == (kind, target, rule)
    assert ev.route.reason


def test_sla_policy_is_chosen_on_status() -> None:
    hot = run(Snapshot(counts={("demo", 30): 1}), **BIG)
    assert (hot.status, hot.sla_policy) == ("sql", "hot")
    assert run(**BIG).sla_policy == "warm"
    assert run().sla_policy is None
    assert RULES.sla_policies["hot"].accept_within == 300


def test_count_windows_are_read_from_the_snapshot() -> None:
    assert RULES.windows == {("demo", 30)}
    assert "eng.demo" in run(Snapshot(counts={("demo", 30): 1})).matched
    assert "eng.demo" not in run(Snapshot(counts={("demo", 7): 5})).matched
    assert "eng.demo" not in run(Snapshot(counts={("demo", 30): 0})).matched


def test_last_and_days_since_against_a_fixed_now() -> None:
    assert RULES.last_events == {"webinar"}
    week = Snapshot(last={"webinar": NOW - datetime.timedelta(days=7)})
    assert "eng.webinar" in run(week).matched
    assert "eng.webinar" not in run(week, now=NOW + datetime.timedelta(seconds=1)).matched
    assert "eng.webinar" not in run().matched  # never attended: null, not matching


def test_explain_steps() -> None:
    ev = run(Snapshot(counts={("demo", 30): 1}), **BIG)
    steps = explain(RULES, ev)
    assert [s.stage for s in steps] == ["scoring", "grade", "qualification", "territories",
                                       "segments", "assignment", "sla"]
    assert [s.outcome for s in steps] == ["100", "A", "sql", "na", "enterprise",
                                         "pool:na-ent", "hot"]
    assert [s.rule for s in steps] == [None, None, "qualification.2.sql", "na", "enterprise",
                                      "na-ent", "hot"]
    assert steps[0].detail == "5 contribution(s): fit 35, bant 35, engagement 30"
    assert steps[1].detail == "highest grade whose threshold the score reaches"
    assert steps[2].detail == "first match; 1 earlier rule did not match"
    assert steps[5].detail == "first match; 2 earlier rules did not match"
    none = explain(RULES, run(country="JP"))
    assert none[3].detail == "none of 3 rules matched; no territory"
    assert none[5].detail == "none of 4 rules matched; queue unassigned"
    assert none[6].detail == "none of 2 rules matched; no SLA applies"


def test_explain_steps_are_shared_within_a_ruleset_never_across_rulesets() -> None:
    """Stage steps are memoised per stage: equal decisions share one Step, and a reloaded
    ruleset whose deciding rule has another id (same position, same outcome) gets its own."""
    first, again = explain(RULES, run(**BIG)), explain(RULES, run(**BIG))
    assert first == again and all(a is b for a, b in zip(first[1:], again[1:], strict=True))
    renamed = load_texts({**FILES, "routing.yaml": ROUTING.replace("{id: na-ent,",
                                                                   "{id: na-enterprise,")})
    moved = explain(renamed, run(rules=renamed, **BIG))
    assert (moved[5].outcome, moved[5].rule) == ("pool:na-ent", "na-enterprise")
    assert (first[5].outcome, first[5].rule) == ("pool:na-ent", "na-ent")
    assert explain(RULES, run(**BIG))[5] is first[5]


def _boom(value: Any) -> bool:
    raise RuntimeError("plugin down")


BOOM = {**BUILTINS,
        "boom": Function(name="boom", impl=_boom, params=(STR,), returns=BOOL, doc="raises",
                         example="boom(title)"),
        "is_vip": Function(name="is_vip", impl=lambda t: t == "vip", params=(STR,),
                           returns=BOOL, doc="", example="is_vip(title)")}


def test_a_rule_whose_function_raises_does_not_match_and_is_listed() -> None:
    files = {**FILES, "scoring.yaml": SCORING.replace(
        "  bant:\n", "    - {id: fit.boom, when: 'boom(title)', points: 100}\n  bant:\n"),
        "sla.yaml": SLA.replace("sla:\n", "sla:\n  - {id: broken, when: 'boom(title) or "
                                "is_vip(title)', accept_within: 1m}\n")}
    rules = load_texts(files, functions=BOOM)
    ev = run(rules=rules, **BIG)
    assert "fit.boom" not in ev.matched and ev.score.total == 70
    assert ev.errors == ("scoring:fit.boom", "sla:broken")
    assert ev.sla_policy == "warm"  # the raising rule counts as not matching; the next one wins
    tail = explain(rules, ev)[-2:]
    assert [(s.stage, s.rule) for s in tail] == [("scoring", "fit.boom"), ("sla", "broken")]
    assert tail[0].detail == "the rule raised an error and was treated as not matching"
    assert run(rules=rules).errors == ("scoring:fit.boom", "sla:broken")


def test_evaluation_is_pure_and_reads_no_clock() -> None:
    snap = Snapshot(counts={("demo", 30): 1},
                    last={"webinar": NOW - datetime.timedelta(days=3)})
    first = run(snap, **BIG)
    assert run(snap, **BIG) == first
    assert run(snap, **BIG) == first  # and again: nothing cached changes the answer
    later = run(snap, now=NOW + datetime.timedelta(days=30), **BIG)
    assert first.matched != later.matched
    assert set(first.matched) - set(later.matched) == {"eng.webinar"}
    assert first.score.total - later.score.total == 5
    # far in the past or future: only the time-dependent rule moves
    for now in (NOW - datetime.timedelta(days=400), NOW + datetime.timedelta(days=4000)):
        other = run(snap, now=now, **BIG)
        assert set(first.matched) ^ set(other.matched) <= {"eng.webinar"}


LEADS = [{}, BIG, {"email": "jo@gmail.com", "employees": 150, "country": "DE"},
         {"email": "x@mailinator.com", "title": "vp", "country": "GB"},
         {"employees": 2000, "budget": 1.0, "country": "US", "title": "SVP"}]


@pytest.mark.parametrize("fields", LEADS)
@pytest.mark.parametrize("snapshot", [Snapshot(), Snapshot(account_owner="bob"),
                                      Snapshot(counts={("demo", 30): 3})])
def test_evaluate_agrees_with_running_the_stage_functions_one_by_one(
        fields: dict[str, Any], snapshot: Snapshot) -> None:
    ev = run(snapshot, **fields)
    env = build_env(Lead(**fields), snapshot, NOW)
    hits, raised = RULES.scoring.fn(env)
    assert raised == []
    assert [RULES.scoring.rules[i].id for i in hits] == [c.rule for c in ev.score.contributions]
    env.update(fit=ev.score.fit, bant=ev.score.bant, engagement=ev.score.engagement,
               score=ev.score.total, grade=ev.score.grade,
               _hits={c.rule for c in ev.score.contributions}, status=ev.status,
               territory=ev.territory, segment=ev.segment,
               pool=ev.route.target if ev.route.kind == "pool" else None,
               queue=ev.route.target if ev.route.kind == "queue" else None)
    stages = (RULES.qualification, RULES.territories, RULES.segments, RULES.assignment, RULES.sla)
    assert tuple(st.fn(env)[0] for st in stages) == ev.decided

