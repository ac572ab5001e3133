"""Conditions (truthiness context): comparisons, presence tests, truthiness and the ``and`` /
``or`` / ``not`` structure of a rule, as durable-rules condition trees over the fact's keys.
"""

from __future__ import annotations

import ast
from typing import Any

from leadrouter_durable import _ir as ir
from leadrouter_durable._fact import Unsupported
from leadrouter_durable._operands import _Operands
from leadrouter_durable._semantics import _FLIP, _ORDER, _is_num, _order, _same, _truthy
from leadrouter_durable._sources import (
    _LIST,
    Operand,
    _getter,
    _is_null,
    _label,
    _Lit,
    _Val,
)

# The rule language's equality: true/false never equal numbers (Python says True == 1). Kept as
# a switch because it is the one place where the language departs from Python's `==`.
BOOL_EQUALS_NUMBER = False


class _Conditions(_Operands):
    """Translates a rule's ``when`` into a durable-rules condition tree."""

    # -- conditions (truthiness context) -------------------------------------------------------
    def cond(self, node: ast.expr) -> ir.Node:
        if isinstance(node, ast.BoolOp):
            items = [self.cond(v) for v in node.values]
            return ir.all_of(*items) if isinstance(node.op, ast.And) else ir.any_of(*items)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return ir.negate(self.cond(node.operand))
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.IfExp):
            test = self.cond(node.test)
            return ir.any_of(ir.all_of(test, self.cond(node.body)),
                             ir.all_of(ir.negate(test), self.cond(node.orelse)))
        return self.truthy(self.operand(node))

    def truthy(self, value: Operand) -> ir.Node:
        if isinstance(value, _Lit):
            return ir.Const(_truthy(value.value))
        tests: list[ir.Node] = []
        for slot in value.slots:
            key = value.key(slot)
            if slot in ("n", "b"):
                tests.append(ir.Test("neq", key, 0))
            elif slot == "s":
                tests.append(ir.Test("neq", key, ""))
            else:  # datetimes and NaN are always truthy
                tests.append(ir.Ex(key))
        return ir.any_of(*tests)

    def compare(self, node: ast.Compare) -> ir.Node:
        """A comparison chain. A missing value compares false with every operator, ``!=`` and
        ``not in`` included; only ``== null`` / ``!= null`` test presence."""
        parts: list[ir.Node] = []
        left_node, left = node.left, self.operand(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            if left is _LIST:
                raise Unsupported("a list can only be the right side of `in`")
            if isinstance(op, ast.In | ast.NotIn):
                if isinstance(comparator, ast.List | ast.Tuple):
                    items = [self._literal(e) for e in comparator.elts]
                    found = ir.any_of(*(self.equal(left, _Lit(v)) for v in items))
                    missing = [left]
                    right: Operand = _LIST
                else:  # "part" in text: a function of two values, computed first
                    right = self.operand(comparator)
                    found = self.truthy(self._computed_pair("in", left, right))
                    missing = [left, right]
                if isinstance(op, ast.NotIn):
                    found = ir.all_of(*(self.present(m) for m in missing), ir.negate(found))
                parts.append(found)
            else:
                right = self.operand(comparator)
                parts.append(self.relate(op, left_node, left, comparator, right))
            left_node, left = comparator, right
        return ir.all_of(*parts)

    def present(self, value: Operand) -> ir.Node:
        if isinstance(value, _Lit):
            return ir.Const(value.value is not None)
        return ir.any_of(*(ir.Ex(value.key(s)) for s in value.slots))

    def relate(self, op: ast.cmpop, left_node: ast.expr, left: Operand,
               right_node: ast.expr, right: Operand) -> ir.Node:
        if isinstance(op, ast.Eq):
            return self.equal(left, right)
        if isinstance(op, ast.NotEq):
            if _is_null(left) or _is_null(right):  # `x != null`: presence
                return ir.negate(self.equal(left, right))
            return ir.all_of(self.present(left), self.present(right),
                             ir.negate(self.equal(left, right)))
        name = _ORDER.get(type(op))
        if name is None:
            raise Unsupported(f"`{type(op).__name__}` comparisons are not supported")
        keep = self._ranked(name, left_node, right)
        if keep is not None:
            return ir.any_of(*(self.equal(left, _Lit(v)) for v in keep))
        keep = self._ranked(_FLIP[name], right_node, left)
        if keep is not None:
            return ir.any_of(*(self.equal(right, _Lit(v)) for v in keep))
        return self.order(name, left, right)

    def equal(self, left: Operand, right: Operand) -> ir.Node:
        if isinstance(left, _Lit) and isinstance(right, _Lit):
            return ir.Const(_same(left.value, right.value))
        if isinstance(left, _Lit):
            left, right = right, left
        assert isinstance(left, _Val)
        if isinstance(right, _Lit):
            v = right.value
            if v is None:
                return ir.all_of(*(ir.Nex(left.key(s)) for s in left.slots))
            tests: list[ir.Node] = []
            if isinstance(v, str):
                if "s" in left.slots:
                    tests.append(ir.Test("eq", left.key("s"), v))
            elif isinstance(v, bool):
                if "b" in left.slots:
                    tests.append(ir.Test("eq", left.key("b"), int(v)))
                if BOOL_EQUALS_NUMBER and "n" in left.slots:
                    tests.append(ir.Test("eq", left.key("n"), int(v)))
            elif _is_num(v):
                if "n" in left.slots:
                    tests.append(ir.Test("eq", left.key("n"), v))
                if BOOL_EQUALS_NUMBER and "b" in left.slots and v in (0, 1):
                    tests.append(ir.Test("eq", left.key("b"), int(v)))
            else:
                raise Unsupported(f"cannot compare with the literal {v!r}")
            return ir.any_of(*tests)
        pairs = [(s, s) for s in left.slots if s in right.slots and s != "x"]
        if BOOL_EQUALS_NUMBER:
            pairs += [(a, b) for a, b in (("n", "b"), ("b", "n"))
                      if a in left.slots and b in right.slots]
        both_null = ir.all_of(*(ir.Nex(left.key(s)) for s in left.slots),
                              *(ir.Nex(right.key(s)) for s in right.slots))
        return ir.any_of(*(ir.Cmp("eq", left.key(a), right.key(b)) for a, b in pairs),
                         both_null)

    def order(self, op: str, left: Operand, right: Operand) -> ir.Node:
        if isinstance(left, _Lit) and isinstance(right, _Lit):
            return ir.Const(_order(op, left.value, right.value))
        if isinstance(left, _Lit):
            left, right, op = right, left, _FLIP[op]
        assert isinstance(left, _Val)
        if isinstance(right, _Lit):
            v = right.value
            if isinstance(v, str) and "s" in left.slots:
                return self._text_order(op, left, right)
            if not _is_num(v) or "n" not in left.slots:
                return ir.FALSE  # null, booleans and mismatched kinds order false
            return ir.Test(op, left.key("n"), v)
        tests: list[ir.Node] = [ir.Cmp(op, left.key(s), right.key(s)) for s in left.slots
                                if s in right.slots and s in ("n", "t", "u")]
        if "s" in left.slots and "s" in right.slots:
            tests.append(self._text_order(op, left, right))
        return ir.any_of(*tests)

    def _text_order(self, op: str, left: _Val, right: Operand) -> ir.Node:
        """Text ordering, computed first: durable-rules orders text with ``strncmp`` over the
        raw JSON, reading past the end of the shorter value (``"US" < "US!"`` is false there)."""
        a, b = left.source.get, _getter(right)

        def get(env: dict[str, Any]) -> Any:
            x, y = a(env), b(env)
            return isinstance(x, str) and isinstance(y, str) and _order(op, x, y)

        symbol = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}[op]
        label = f"{left.source.label} {symbol} {_label(right)} (text ordering)"
        src = self.source(f"order:{label}", label, get, ("b",), computed=True)
        return ir.Test("eq", src.keys["b"], 1)
