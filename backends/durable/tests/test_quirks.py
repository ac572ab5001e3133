"""durable-rules itself: what the translation relies on, and the quirks it works around.

Each quirk test pins a behaviour of durable-rules 2.0.28 (unmaintained since 2020, so it will not
change under us) that leadrouter_durable/_translate.py has to avoid; the property test checks
that the conditions the translation emits mean in durable-rules what they mean in Python.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from _ci import require_module
from hypothesis import given, settings
from hypothesis import strategies as st
from leadrouter_durable import _ir as ir
from leadrouter_durable._translate import ALWAYS, split_condition

# skipped where durable-rules is missing, failed in CI (CI=true; tests/_ci.py)
engine = require_module(
    "durable_rules_engine",
    reason="durable-rules is not importable: it needs `leadrouter-durable` and Python < 3.13 "
    "(its C extension does not load on 3.13+)")

_names = itertools.count()


class Rules:
    """A raw durable-rules ruleset; ``fire`` asserts a fact, drains actions, retracts it."""

    def __init__(self, rules: dict[str, Any] | str) -> None:
        text = rules if isinstance(rules, str) else json.dumps(
            {name: {"all": [{"m": cond}]} for name, cond in rules.items()})
        self.handle = engine.create_ruleset(f"quirks{next(_names)}", text)
        self.ids = itertools.count(1)

    def fire(self, fact: dict[str, Any] | str) -> list[str]:
        text = fact if isinstance(fact, str) else json.dumps(
            {"sid": "0", "id": next(self.ids), ALWAYS: 1, **fact})
        result, state = engine.assert_fact(self.handle, text)
        fired = []
        if result == 0:
            action = engine.start_action_for_state(self.handle, state)
            while action:
                messages = action[1] if isinstance(action, tuple) else action
                fired.extend(json.loads(messages))
                action = engine.complete_and_start_action(self.handle, state)
        engine.retract_fact(self.handle, text)
        return sorted(fired)

    def close(self) -> None:
        engine.delete_ruleset(self.handle)


# -- the emitted conditions mean what they say ----------------------------------------------

# number-valued keys and one text-valued key: the translation never compares across kinds
NUMBER_KEYS = ["a", "b", "c"]
OPS = ["eq", "neq", "lt", "lte", "gt", "gte"]
leaves = st.one_of(
    st.builds(ir.Test, st.sampled_from(OPS), st.sampled_from(NUMBER_KEYS), st.integers(0, 2)),
    st.builds(ir.Test, st.sampled_from(["eq", "neq"]), st.just("s"),
              st.sampled_from(["x", "", 'q"'])),
    st.builds(ir.Cmp, st.sampled_from(OPS), st.sampled_from(NUMBER_KEYS),
              st.sampled_from(NUMBER_KEYS)),
    st.builds(ir.Cmp, st.sampled_from(["eq"]), st.just("s"), st.just("s2")),
    st.builds(ir.Ex, st.sampled_from([*NUMBER_KEYS, "s"])),
    st.builds(ir.Nex, st.sampled_from([*NUMBER_KEYS, "s"])),
)
trees = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, min_size=1, max_size=3).map(lambda xs: ir.all_of(*xs)),
    st.lists(inner, min_size=1, max_size=3).map(lambda xs: ir.any_of(*xs)),
    inner.map(ir.negate)), max_leaves=10)
facts = st.fixed_dictionaries({}, optional={
    "a": st.integers(0, 2), "b": st.integers(0, 2), "c": st.one_of(st.integers(0, 2),
                                                                   st.just(1.5)),
    "s": st.sampled_from(["x", "", 'q"', "y"]), "s2": st.sampled_from(["x", "y"])})


@settings(max_examples=300, deadline=None)
@given(st.lists(trees, min_size=1, max_size=4), st.lists(facts, min_size=1, max_size=6))
def test_emitted_conditions_mean_in_durable_rules_what_they_mean_in_python(
        conditions: list[ir.Node], cases: list[dict[str, Any]]) -> None:
    rules: dict[str, Any] = {}
    for i, node in enumerate(conditions):
        for n, part in enumerate(split_condition(node)):
            rules[f"r{i}_{n}"] = ir.emit(part, ALWAYS)
    if not rules:
        return
    ruleset = Rules(ir.dumps({k: {"all": [{"m": v}]} for k, v in rules.items()}))
    try:
        for fact in cases:
            fired = {name.split("_")[0] for name in ruleset.fire(fact)}
            expected = {f"r{i}" for i, node in enumerate(conditions) if ir.holds(node, fact)}
            assert fired == expected, (fact, conditions)
    finally:
        ruleset.close()


# -- quirks the translation works around -----------------------------------------------------

def test_quirk_text_and_numbers_compare_as_text() -> None:
    """A number property against text: durable-rules prints the number and runs strncmp."""
    rules = Rules({"gt": {"$gt": {"n": 1}}, "eq": {"n": "5"}})
    assert rules.fire({"n": "X"}) == ["gt"]  # "X" > 1
    assert rules.fire({"n": 5}) == ["eq", "gt"]  # 5 == "5"
    rules.close()


def test_quirk_text_ordering_reads_past_the_end_of_the_value() -> None:
    """strncmp over max(len) of the raw JSON: the fact's closing quote takes part."""
    rules = Rules({"lt": {"$lt": {"s": "US!"}}})
    assert "US" < "US!"
    assert rules.fire({"s": "US"}) == []  # '"' (0x22) > '!' (0x21)
    rules.close()


def test_quirk_a_missing_right_hand_property_can_match() -> None:
    """``a > $m.c`` with no ``c`` in the fact: read as a match (in some rulesets, not others).
    The translation guards every such comparison with ``$ex`` on the right-hand key."""
    rules = Rules({"plain": {"$gt": {"a": {"$m": "c"}}},
                   "guarded": {"$and": [{"$ex": {"c": 1}}, {"$gt": {"a": {"$m": "c"}}}]},
                   "neq": {"$or": [{"$nex": {"b": 1}}, {"$neq": {"b": "x"}}]},
                   "any": {ALWAYS: 1}})
    fired = [rules.fire(fact) for fact in ({"a": 5}, {"a": 4, "b": "x"}, {"a": 5, "c": 9})]
    assert any("plain" in f for f in fired[:2])  # 5 > (nothing), 4 > (nothing)
    assert not any("guarded" in f for f in fired)
    rules.close()


def test_quirk_the_session_state_is_a_fact_too() -> None:
    """The first handled fact of a session creates {"sid", "id": "sid-0", "$s": 1}, and the
    rules see it as a fact: a condition true for an empty fact fires once for it. The
    translation requires the key every lead's fact carries in such conditions."""
    rules = Rules({"absent": {"$nex": {"x": 1}}, "any": {ALWAYS: 1},
                   "absent_guarded": {"$and": [{ALWAYS: 1}, {"$nex": {"x": 1}}]}})
    assert rules.fire({"x": 1}) == ["absent", "any"]  # "absent": the state fact, not ours
    assert rules.fire({"x": 1}) == ["any"]
    assert rules.fire({}) == ["absent", "absent_guarded", "any"]
    rules.close()


def test_quirk_an_exponent_needs_a_fraction() -> None:
    with pytest.raises(Exception, match="error code: 204"):
        Rules('{"r": {"all": [{"m": {"n": 1e+16}}]}}')
    rules = Rules('{"r": {"all": [{"m": {"n": 1.0e+16}}]}}')
    assert rules.fire('{"sid": "0", "id": 1, "n": 1.0e+16}') == ["r"]
    rules.close()


def test_quirk_an_or_can_fire_a_rule_twice_for_one_fact() -> None:
    rules = Rules({"r": {"$or": [{"a": 1}, {"b": 1}]}})
    assert rules.fire({"a": 1, "b": 1}) == ["r", "r"]
    rules.close()


def test_quirk_at_most_31_expression_slots_per_rule() -> None:
    def nested(n: int) -> dict[str, Any]:
        cond: dict[str, Any] = {"a": 1}
        for i in range(n):
            cond = {"$and": [{"$gt": {f"x{i}": 1}}, cond]}
        return cond

    Rules({"r": nested(15)}).close()  # 15 x ($and + END) = 30
    with pytest.raises(Exception, match="error code: 113"):
        Rules({"r": nested(16)})
