"""The condition trees of the durable-rules backend (leadrouter_durable/_ir.py).

Pure Python (no durable-rules needed): negation pushed to the leaves and the simplifications
that keep conditions inside durable-rules' limits must not change what a condition means.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from leadrouter_durable import _ir as ir
from leadrouter_durable._translate import (
    ALWAYS,
    MAX_SLOTS,
    encode,
    fnv1_32,
    split_condition,
)

KEYS = ["a", "b", "c"]
OPS = ["eq", "neq", "lt", "lte", "gt", "gte"]

leaves = st.one_of(
    st.builds(ir.Test, st.sampled_from(OPS), st.sampled_from(KEYS), st.integers(0, 3)),
    st.builds(ir.Cmp, st.sampled_from(OPS), st.sampled_from(KEYS), st.sampled_from(KEYS)),
    st.builds(ir.Ex, st.sampled_from(KEYS)),
    st.builds(ir.Nex, st.sampled_from(KEYS)),
    st.builds(ir.Const, st.booleans()),
)
# raw trees (not simplified, with explicit negations) to compare the rewritten ones against
raw_trees = st.recursive(leaves, lambda inner: st.one_of(
    st.tuples(st.just("and"), st.lists(inner, min_size=1, max_size=4)),
    st.tuples(st.just("or"), st.lists(inner, min_size=1, max_size=4)),
    st.tuples(st.just("not"), inner)), max_leaves=14)
facts = st.dictionaries(st.sampled_from(KEYS), st.integers(0, 3))


def meaning(tree: Any, fact: dict[str, int]) -> bool:
    if isinstance(tree, tuple):
        kind, body = tree
        if kind == "not":
            return not meaning(body, fact)
        results = [meaning(t, fact) for t in body]
        return all(results) if kind == "and" else any(results)
    return ir.holds(tree, fact)


def build(tree: Any) -> ir.Node:
    if isinstance(tree, tuple):
        kind, body = tree
        if kind == "not":
            return ir.negate(build(body))
        parts = [build(t) for t in body]
        return ir.all_of(*parts) if kind == "and" else ir.any_of(*parts)
    return ir.simplify(tree)


def no_negation_left(node: ir.Node) -> bool:
    if isinstance(node, ir.And | ir.Or):
        return all(no_negation_left(i) for i in node.items)
    return True  # leaves only: Const, Test, Cmp, Ex, Nex


@settings(max_examples=400, deadline=None)
@given(raw_trees, st.lists(facts, min_size=1, max_size=8))
def test_rewriting_keeps_the_meaning(tree: Any, cases: list[dict[str, int]]) -> None:
    built = build(tree)
    assert no_negation_left(built)
    negated = ir.negate(built)
    for fact in cases:
        want = meaning(tree, fact)
        assert ir.holds(built, fact) == want
        assert ir.holds(negated, fact) == (not want)
        # split for durable-rules: some part holds exactly when the rule holds (a fact always
        # carries ALWAYS; the parts are guarded so that the session's state fact matches none)
        parts = split_condition(built)
        with_always = {**fact, ALWAYS: 1}
        assert any(ir.holds(p, with_always) for p in parts) == want
        assert not any(ir.holds(p, {}) for p in parts)
        assert all(ir.expression_slots(p) <= MAX_SLOTS for p in parts)


def test_negated_membership_is_factored_to_fit_durable_rules() -> None:
    # not (x in [1, 2, ..., 40]) would be 40 or-pairs; factored it is one "absent or (...)"
    member = ir.any_of(*(ir.Test("eq", "x", v) for v in range(40)))
    negated = ir.negate(member)
    assert negated == ir.Or((ir.Nex("x"), ir.And(tuple(ir.Test("neq", "x", v)
                                                        for v in range(40)))))
    assert ir.expression_slots(negated) == 4


def test_numbers_are_written_the_way_durable_rules_parses_them() -> None:
    assert ir.render_number(1e16) == "1.0e+16"  # "1e+16" would be read as 1
    assert ir.render_number(2.5e-07) == "2.5e-07"
    assert ir.render_number(-0.0) == "-0.0"
    assert ir.render_number(float("inf")) == "1.0e999"
    assert ir.render_number(2**70) == "1.1805916207174113e+21"
    assert ir.render_number(-(2**63)) == str(-(2**63))
    assert encode(True) == ("b", "1")
    assert encode(float("nan")) == ("x", "1")
    assert encode("é\"") == ("s", '"\\u00e9\\""')  # ASCII only: lone surrogates pass too
    assert encode(None) is None


def test_property_names_hash_like_durable_rules() -> None:
    # durable-rules matches properties by this hash alone (state.h: HASH_ID / HASH_SID)
    assert fnv1_32("id") == 926444256
    assert fnv1_32("sid") == 3593476751
