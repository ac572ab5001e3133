"""Memoised runs of single-field scoring rules (router/engine/_alpha.py) behave like the rules."""

from __future__ import annotations

import datetime as dt
from typing import Any

from leadrouter_sdk import Lead

from router.engine import _alpha
from router.engine.evaluate import evaluate
from router.engine.functions import BOOL, BUILTINS, STR, Function
from router.engine.loader import load_texts
from router.engine.ruleset import Ruleset

NOW = dt.datetime(2026, 11, 24, 15, tzinfo=dt.UTC)
SCORING = """
scoring:
  fit:
    - {id: size.big, when: "employees >= 1000", points: 25}
    - {id: size.mid, when: "employees >= 100 and employees < 1000", points: 10}
    - {id: size.small, when: "employees < 100", points: -5}
  bant:
    - {id: vp, when: 'matches(title, "(?i)\\\\bvp\\\\b")', points: 20}
    - {id: exec, when: 'matches(title, "(?i)chief|ceo")', points: 15}
    - {id: watched, when: 'watched(title)', points: 1}
    - {id: watched.again, when: 'watched(title) and len(title) > 2', points: 1}
qualification:
  - {status: sql, when: 'hit("vp") and score >= 40'}
  - {status: mql, when: 'score >= 20'}
"""
FILES = {"scoring.yaml": SCORING, "routing.yaml": "territories: []\n",
         "reps.yaml": "reps: []\n", "sla.yaml": "sla: []\n"}
CALLS: list[str] = []


def _watched(title: Any) -> bool:
    CALLS.append(str(title))
    return False


FUNCTIONS = {**BUILTINS, "watched": Function(name="watched", impl=_watched, params=(STR,),
                                             returns=BOOL, doc="", example="watched(title)")}


def _rules() -> Ruleset:
    rules: Ruleset = load_texts(FILES, functions=FUNCTIONS)
    return rules


def _memos(rules: Ruleset) -> list[dict[Any, Any]]:
    assert rules.run is not None
    return [v for k, v in rules.run.__globals__.items() if k.startswith("_gm")]


def test_runs_over_one_field_are_memoised_and_give_the_rule_by_rule_answer() -> None:
    rules = _rules()
    memos = _memos(rules)
    assert len(memos) == 2  # employees (3 rules), title (2 rules); plugin rules are not
    first = evaluate(rules, Lead(employees=5000, title="VP Sales"), now=NOW)
    again = evaluate(rules, Lead(employees=5000, title="VP Sales", company="Other"), now=NOW)
    assert first.matched == again.matched == ("size.big", "vp", "qualification.1.sql")
    assert first.score == again.score and first.score.total == 45
    assert any(5000 in m for m in memos) and any("VP Sales" in m for m in memos)
    # hit() from a memoised run still feeds qualification on a memo hit
    assert again.status == "sql"
    small = evaluate(rules, Lead(employees=5, title="Chief of Staff"), now=NOW)
    assert small.matched == ("size.small", "exec") and small.score.total == 10


def test_rules_calling_a_plugin_function_run_every_time() -> None:
    rules = _rules()
    CALLS.clear()
    for _ in range(3):
        evaluate(rules, Lead(title="Head of IT"), now=NOW)
    assert CALLS == ["Head of IT"] * 6  # two rules x three leads: never memoised


def test_a_missing_value_is_a_value_like_any_other() -> None:
    rules = _rules()
    for _ in range(2):
        ev = evaluate(rules, Lead(title="VP"), now=NOW)
        assert ev.matched == ("vp", "qualification.2.mql")


def test_the_memo_stays_bounded() -> None:
    rules = _rules()
    for n in range(_alpha.MEMO_SIZE + 500):
        evaluate(rules, Lead(employees=n), now=NOW)
    assert all(len(m) <= _alpha.MEMO_SIZE for m in _memos(rules))
    assert evaluate(rules, Lead(employees=150), now=NOW).matched == ("size.mid",)


def test_a_rule_that_raises_in_a_memoised_run_is_reported_on_every_lead() -> None:
    # Built-in functions do not raise; stand one in that does, to check the path anyway.
    files = {**FILES, "scoring.yaml": """
scoring:
  fit:
    - {id: short, when: "len(title) < 5", points: 1}
    - {id: long, when: "len(title) >= 5", points: 2}
"""}
    rules: Ruleset = load_texts(files, functions=BUILTINS)
    assert rules.run is not None
    namespace = rules.run.__globals__
    assert len(_memos(rules)) == 1  # the two rules over title form one memoised run

    def boom(value: Any) -> int:
        raise ValueError(value)

    namespace["_fn_len"] = boom
    for _ in range(2):  # the failing outcome is not memoised: the second lead reports it too
        ev = evaluate(rules, Lead(title="Chief"), now=NOW)
        assert ev.errors == ("scoring:short", "scoring:long")
        assert ev.score.fit == 0
    assert all("Chief" not in memo for memo in _memos(rules))
