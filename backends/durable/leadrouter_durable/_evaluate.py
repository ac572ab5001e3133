"""Python evaluation of the values durable-rules cannot compute (function calls, arithmetic,
comparisons and boolean operators used as values): they are computed before the fact is
asserted and only their comparison runs in durable-rules.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from leadrouter_durable._fact import Unsupported
from leadrouter_durable._semantics import (
    _ARITH,
    _FLIP,
    _ORDER,
    _absent_or,
    _arith,
    _both_present,
    _different,
    _in_list,
    _in_text,
    _member_of,
    _needle_present,
    _neg,
    _not_same,
    _order,
    _pos,
    _same,
    _truthy,
)
from leadrouter_durable._sources import (
    _NOT_LITERAL,
    Getter,
    _attribute_key,
    _literal_value,
    _operand_literal,
    _Sources,
    _special_getter,
)
from router.engine.functions import Matcher


class _Evaluator(_Sources):
    """Builds the Python getters of computed values."""

    # -- Python evaluation of values durable-rules cannot compute ------------------------------
    def evaluator(self, node: ast.expr) -> Getter:
        value = _literal_value(node)
        if value is not _NOT_LITERAL:
            return lambda env: value
        if isinstance(node, ast.Name):
            name = node.id
            return lambda env: env.get(name)
        key = _attribute_key(node)
        if key is not None:
            return lambda env: env["attributes"].get(key)
        if isinstance(node, ast.BoolOp):
            parts = [self.evaluator(v) for v in node.values]
            want = isinstance(node.op, ast.Or)

            def boolop(env: dict[str, Any]) -> Any:
                result: Any = None
                for part in parts:
                    result = part(env)
                    if _truthy(result) == want:
                        return result
                return result

            return boolop
        if isinstance(node, ast.UnaryOp):
            inner = self.evaluator(node.operand)
            if isinstance(node.op, ast.Not):
                return lambda env: not _truthy(inner(env))
            if isinstance(node.op, ast.USub):
                return lambda env: _neg(inner(env))
            if isinstance(node.op, ast.UAdd):
                return lambda env: _pos(inner(env))
            raise Unsupported(f"`{type(node.op).__name__}` is not supported")
        if isinstance(node, ast.BinOp):
            op = type(node.op)
            if op not in _ARITH:
                raise Unsupported(f"`{op.__name__}` is not supported")
            left, right = self.evaluator(node.left), self.evaluator(node.right)
            return lambda env: _arith(op, left(env), right(env))
        if isinstance(node, ast.IfExp):
            test, body, orelse = (self.evaluator(n) for n in (node.test, node.body,
                                                                node.orelse))
            return lambda env: body(env) if _truthy(test(env)) else orelse(env)
        if isinstance(node, ast.Compare):
            return self._compare_evaluator(node)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return self._call_evaluator(node)
        raise Unsupported(f"`{type(node).__name__}` is not supported")

    def _compare_evaluator(self, node: ast.Compare) -> Getter:
        """The value of a comparison used as a value (``(a > 1) == b``): same rules as
        :meth:`compare`, evaluated in Python."""
        first = self.evaluator(node.left)
        steps: list[tuple[Callable[[Any, Any], bool], Getter]] = []
        left_node = node.left
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            test: Callable[[Any, Any], bool]
            right: Getter = self.evaluator(comparator) if not isinstance(
                comparator, ast.List | ast.Tuple) else (lambda env: None)
            if isinstance(op, ast.In | ast.NotIn):
                found: Callable[[Any, Any], bool]
                needs: Callable[[Any, Any], bool]
                if isinstance(comparator, ast.List | ast.Tuple):
                    found = _in_list([self._literal(e) for e in comparator.elts])
                    needs = _needle_present
                else:
                    found, needs = _in_text, _both_present
                test = found if isinstance(op, ast.In) else _absent_or(needs, found)
            elif isinstance(op, ast.Eq):
                test = _same
            elif isinstance(op, ast.NotEq):
                if _literal_value(comparator) is None or _literal_value(left_node) is None:
                    test = _not_same
                else:
                    test = _different
            elif type(op) in _ORDER:
                name = _ORDER[type(op)]
                keep = self._ranked(name, left_node, _operand_literal(comparator))
                flipped = self._ranked(_FLIP[name], comparator, _operand_literal(left_node))
                if keep is not None:
                    test = _member_of(frozenset(keep), first=True)
                elif flipped is not None:
                    test = _member_of(frozenset(flipped), first=False)
                else:
                    def ordered(a: Any, b: Any, name: str = name) -> bool:
                        return _order(name, a, b)

                    test = ordered
            else:
                raise Unsupported(f"`{type(op).__name__}` comparisons are not supported")
            steps.append((test, right))
            left_node = comparator

        def compare(env: dict[str, Any]) -> bool:
            left = first(env)
            for test, right in steps:
                value = right(env)
                if not test(left, value):
                    return False
                left = value
            return True

        return compare

    def _call_evaluator(self, node: ast.Call) -> Getter:
        assert isinstance(node.func, ast.Name)
        name = node.func.id
        special = _special_getter(node)
        if special is not None:
            return special[2]
        fn = self.functions.get(name)
        if name == "matches":
            pattern = _literal_value(node.args[1])
            if not isinstance(pattern, str):
                raise Unsupported("matches() needs a text literal pattern")
            test = Matcher(pattern).test
            text = self.evaluator(node.args[0])
            return lambda env: test(text(env))
        if name == "days_since" and fn is not None and fn.impl is not None:
            impl = fn.impl
            when = self.evaluator(node.args[0])
            return lambda env: impl(when(env), env["now"])
        if fn is None or fn.impl is None or node.keywords:
            raise Unsupported(f"function `{name}` has no implementation the durable-rules "
                              "backend can call")
        impl = fn.impl
        args = [self.evaluator(a) for a in node.args]
        if len(args) == 1:
            only = args[0]
            return lambda env: impl(only(env))
        return lambda env: impl(*(a(env) for a in args))
