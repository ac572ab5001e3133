"""The rule expression language: parse, check against an allow-list, compile to Python functions.

An expression is parsed with :mod:`ast` and rebuilt node by node into a *new* tree that only
contains what this module chose to emit: dict lookups into the lead's environment ``_e``, calls
to the null-safe helpers in :mod:`router.engine._runtime` and to the functions in
:mod:`router.engine.functions`, constants, and Python's own boolean / comparison operators where
they are safe. Anything not on the allow-list (attribute access, dunders, lambdas,
comprehensions, ``**``, walrus, f-strings, ...) is refused with a message that says how to write
the rule instead. The rebuilt trees of one stage are compiled together into one plain function,
so evaluating a lead costs a function call per stage, not an interpreter walk per rule. No user
text is ever passed to ``eval`` or ``exec``: only trees built here are compiled.

Where each part lives (this module is the public face; the others are private):

* router/engine/_expr_nodes.py: limits, :class:`ExprError`, :class:`Scope`,
  :class:`CheckedExpr`, typed nodes and the builder's dispatch on node types;
* this module: literals, names, attributes and operators, and :func:`check`;
* router/engine/_expr_compare.py: comparisons, ``in``, list literals;
* router/engine/_expr_calls.py: function calls and their special forms;
* router/engine/_expr_compile.py: :func:`compile_stage`.
"""

from __future__ import annotations

import ast
import math

from router.engine._expr_calls import DERIVED_CALLS, CallBuilder
from router.engine._expr_compare import CompareBuilder
from router.engine._expr_compile import StageFn, compile_stage
from router.engine._expr_nodes import (
    MAX_DAYS,
    MAX_DEPTH,
    MAX_INT,
    MAX_LIST,
    MAX_LITERAL_TEXT,
    MAX_NODES,
    MAX_SOURCE,
    REFUSED,
    CheckedExpr,
    ExprError,
    Scope,
    Typed,
    env_get,
    helper_call,
    suggest,
)
from router.engine.functions import ANY, BOOL, NUM, STR, TIME

__all__ = ["MAX_DAYS", "MAX_DEPTH", "MAX_INT", "MAX_LIST", "MAX_LITERAL_TEXT", "MAX_NODES",
           "MAX_SOURCE", "CheckedExpr", "ExprError", "Scope", "StageFn", "check",
           "compile_stage"]

# The same table under its old name: backends/durable/tests/test_engine.py patches it here.
_DERIVED_CALLS = DERIVED_CALLS

_OPS_ARITH = {ast.Add: "_add", ast.Sub: "_sub", ast.Mult: "_mul", ast.Div: "_div",
              ast.FloorDiv: "_floordiv", ast.Mod: "_mod"}
_CONSTANT_NAMES = {"true": True, "false": False, "null": None,
                   "True": True, "False": False, "None": None}


class _Builder(CallBuilder, CompareBuilder):
    """Checks one expression: leaves and operators here, comparisons and calls in the mixins."""

    # -- leaves ------------------------------------------------------------------------------
    def _Constant(self, node: ast.Constant, depth: int) -> Typed:
        v = node.value
        if v is None or isinstance(v, bool):
            return Typed(ast.Constant(value=v), BOOL if isinstance(v, bool) else ANY, repr(v))
        if isinstance(v, int):
            if abs(v) > MAX_INT:
                raise self.fail(node, f"number {v} is too large", f"use at most {MAX_INT:,}")
            return Typed(ast.Constant(value=v), NUM, str(v))
        if isinstance(v, float):
            if not math.isfinite(v) or abs(v) > MAX_INT:
                raise self.fail(node, f"number {v} is out of range", f"use at most {MAX_INT:,}")
            return Typed(ast.Constant(value=v), NUM, str(v))
        if isinstance(v, str):
            if len(v) > MAX_LITERAL_TEXT:
                raise self.fail(node, "text literal is too long",
                                f"keep literals under {MAX_LITERAL_TEXT} characters")
            return Typed(ast.Constant(value=v), STR, f'"{v}"')
        raise self.fail(node, f"literal {v!r} is not allowed",
                        "use numbers, \"text\", true, false or null")

    def _Name(self, node: ast.Name, depth: int) -> Typed:
        name = node.id
        if name in _CONSTANT_NAMES:
            value = _CONSTANT_NAMES[name]
            return Typed(ast.Constant(value=value), ANY if value is None else BOOL, name)
        if name.startswith("_"):
            raise self.fail(node, f"name `{name}` is not allowed (names may not start with _)",
                            "use a lead field, e.g. `title`, or attributes.<name>")
        typ = self.scope.names.get(name)
        if typ is None:
            if name in self.scope.later:
                producer = self.scope.later[name]
                raise self.fail(node, f"`{name}` is not known yet in {self.scope.stage} rules: "
                                f"the {producer} stage computes it",
                                f"use `{name}` only in stages after {producer}")
            if name == "attributes":
                raise self.fail(node, "`attributes` is a collection",
                                "write attributes.<name> for one custom field")
            hint = suggest(name, [*self.scope.names, *self.scope.functions])
            raise self.fail(node, f"unknown name `{name}`",
                            f"did you mean `{hint}`?" if hint else
                            "use a lead field (see docs/rules.md) or attributes.<name>")
        self.names.add(name)
        return Typed(env_get(name), typ, name, self.scope.domains.get(name),
                      nonnull=name in self.scope.never_null)

    def _Attribute(self, node: ast.Attribute, depth: int) -> Typed:
        if isinstance(node.value, ast.Name) and node.value.id == "attributes":
            return self._attribute_field(node, node.attr)
        raise self.fail(node, "attribute access is not allowed",
                        "fields are plain names (`title`); custom fields are attributes.<name>")

    def _Subscript(self, node: ast.Subscript, depth: int) -> Typed:
        key = node.slice
        if (isinstance(node.value, ast.Name) and node.value.id == "attributes"
                and isinstance(key, ast.Constant) and isinstance(key.value, str)):
            return self._attribute_field(node, key.value)
        raise self.fail(node, "indexing is not allowed",
                        'only attributes["custom field"] may be indexed, with a text literal')

    def _attribute_field(self, node: ast.AST, key: str) -> Typed:
        if key.startswith("__") or len(key) > 64:
            raise self.fail(node, f"attribute name `{key}` is not allowed",
                            "use the custom field's plain name")
        self.names.add("attributes")
        get = ast.Call(func=ast.Attribute(value=env_get("attributes"), attr="get", ctx=ast.Load()),
                       args=[ast.Constant(value=key)], keywords=[])
        return Typed(get, ANY, f"attributes.{key}")

    # -- operators ---------------------------------------------------------------------------
    def _BoolOp(self, node: ast.BoolOp, depth: int) -> Typed:
        values = [self.build(v, depth) for v in node.values]
        typ = BOOL if all(v.type == BOOL for v in values) else ANY
        return Typed(ast.BoolOp(op=node.op, values=[v.node for v in values]), typ)

    def _UnaryOp(self, node: ast.UnaryOp, depth: int) -> Typed:
        operand = self.build(node.operand, depth)
        if isinstance(node.op, ast.Not):
            return Typed(ast.UnaryOp(op=ast.Not(), operand=operand.node), BOOL)
        if isinstance(node.op, ast.USub | ast.UAdd):
            if operand.type not in (NUM, ANY):
                raise self.fail(node, f"{operand.label or 'this value'} is {operand.type}, "
                                "not a number", "use a numeric field or literal")
            if isinstance(operand.node, ast.Constant):
                value = operand.node.value
                if isinstance(value, int | float) and not isinstance(value, bool):
                    signed = -value if isinstance(node.op, ast.USub) else value
                    return Typed(ast.Constant(value=signed), NUM, str(signed))
            fn = "_neg" if isinstance(node.op, ast.USub) else "_pos"
            return Typed(helper_call(fn, operand.node), NUM if operand.type == NUM else ANY)
        raise self.fail(node, "bitwise operators are not allowed", "use `not`, `and`, `or`")

    def _BinOp(self, node: ast.BinOp, depth: int) -> Typed:
        fn = _OPS_ARITH.get(type(node.op))
        if fn is None:
            refused = REFUSED.get(type(node.op), "this operator is not allowed")
            raise self.fail(node, refused, "use + - * / // % on numbers")
        left, right = self.build(node.left, depth), self.build(node.right, depth)
        kinds = {left.type, right.type}
        if kinds <= {NUM, ANY}:
            typ = NUM if kinds == {NUM} else ANY
        elif kinds == {STR} and isinstance(node.op, ast.Add):
            typ = STR
        elif ANY in kinds and isinstance(node.op, ast.Add) and kinds <= {STR, ANY}:
            typ = ANY
        else:
            raise self.fail(node, f"cannot apply this arithmetic to {left.type} and "
                            f"{right.type}", "arithmetic works on numbers (and + joins text)")
        return Typed(helper_call(fn, left.node, right.node), typ)

    def _IfExp(self, node: ast.IfExp, depth: int) -> Typed:
        test, body, orelse = (self.build(n, depth) for n in (node.test, node.body, node.orelse))
        typ = body.type if body.type == orelse.type else ANY
        return Typed(ast.IfExp(test=test.node, body=body.node, orelse=orelse.node), typ)


def check(source: str, scope: Scope, prefix: str = "0") -> CheckedExpr:
    """Parse and check one expression; raises :class:`ExprError` when it is refused."""
    if not isinstance(source, str):
        raise ExprError("a condition must be text", 'quote it, e.g. when: "employees >= 100"')
    if not source.strip():
        raise ExprError("empty expression", 'write a condition, or "true" to always match')
    if len(source) > MAX_SOURCE:
        raise ExprError("expression is too long", f"keep it under {MAX_SOURCE} characters, "
                        "or split it into several rules")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"syntax error: {exc.msg}", "expressions use Python syntax, e.g. "
                        'employees >= 100 and country == "US"',
                        line=exc.lineno or 1, col=max((exc.offset or 1) - 1, 0)) from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ExprError(f"expression cannot be parsed: {type(exc).__name__}",
                        "simplify it or split it into several rules") from None
    builder = _Builder(source, scope, prefix)
    typed = builder.build(tree.body)
    if typed.type in (NUM, STR, TIME):
        raise ExprError(f"the condition is a {typed.type}, not true/false",
                        f"compare it, e.g. `{typed.label or 'value'} != null`",
                        line=getattr(tree.body, "lineno", 1),
                        col=getattr(tree.body, "col_offset", 0))
    return CheckedExpr(source=source, node=typed.node, constants=builder.constants,
                       windows=frozenset(builder.windows),
                       last_events=frozenset(builder.last_events),
                       names=frozenset(builder.names))
