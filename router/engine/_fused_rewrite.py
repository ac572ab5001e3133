"""How checked expression trees are rewritten for the fused ruleset function
(router/engine/_fused.py): ``_e["name"]`` lookups become locals (hoisted lead fields and derived
names, stage outputs, ``hit()`` flags), ``count()``/``last()`` call a bound ``get`` hoisted once,
and ``matches()`` on a text field reads its element of the field's one-RE2-call answer."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

from router.engine._ast import inline_text_test, names_of_kind
from router.engine._ast import load as _name
from router.engine._ast import store as _store
from router.engine.functions import STR, Function, Matcher

__all__ = ["BOUND_GETS", "Rewrite", "batch_line", "batch_local"]

_OUTPUT_LOCALS = {"fit": "_o_fit", "bant": "_o_bant", "engagement": "_o_eng",
                  "score": "_o_score", "grade": "_o_grade", "status": "_o_status",
                  "territory": "_o_territory", "segment": "_o_segment", "pool": "_o_pool",
                  "queue": "_o_queue"}
# Snapshot mappings read with `.get` → the local holding the bound method (the `_a_` prefix
# keeps rules reading them out of memoised runs, router/engine/_alpha.py).
BOUND_GETS = {"_counts": "_a_cget", "_last": "_a_lget"}
# Names whose value is always text or null (hashable, so they can key a MatchSet's memo).
_TEXT_NAMES = names_of_kind(STR)


class Rewrite(ast.NodeTransformer):
    """``_e["key"]`` → locals: lead fields and derived names hoisted, outputs and hits local;
    ``matches(field, "...")`` → an element of the field's :class:`MatchSet` answer."""

    def __init__(self, hit_locals: dict[str, str], constants: dict[str, Any],
                 functions: Mapping[str, Function]) -> None:
        self.hoisted: dict[str, str] = {}
        self.functions = functions
        self.hit_locals = hit_locals
        self.constants = constants
        # text field -> the distinct patterns rules apply to it (answer index = list index)
        self.batches: dict[str, list[str]] = {}
        self.bound: set[str] = set()  # snapshot mappings whose `get` is hoisted

    def visit_Call(self, node: ast.Call) -> ast.expr:
        # count()/last() read `_e["_counts"].get(key, 0)`: call a bound `get` hoisted once
        # (a dozen engagement rules each paid the method lookup).
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "get":
            key = _key(func.value)
            if key in BOUND_GETS:
                self.bound.add(key)
                node.func = _name(BOUND_GETS[key])
        self.generic_visit(node)
        return inline_text_test(node, self.text_locals(), self.functions)

    def text_locals(self) -> set[str]:
        return {local for key, local in self.hoisted.items() if key in _TEXT_NAMES}

    def visit_IfExp(self, node: ast.IfExp) -> ast.expr:
        # expr.py compiles matches(x, p) on a simple subject to the memo lookup
        # `(r if (r := memo.get(x)) is not None else test(x))`; on a text field it becomes
        # `_b<n>[j]`, with `_b<n>` computed once per lead for all of the field's patterns.
        orelse = node.orelse
        if (isinstance(orelse, ast.Call) and isinstance(orelse.func, ast.Name)
                and len(orelse.args) == 1):
            key = _key(orelse.args[0])
            matcher = self._matcher(orelse.func.id)
            if key is not None and matcher is not None and key in _TEXT_NAMES:
                self.hoisted.setdefault(key, f"_v{len(self.hoisted)}")
                patterns = self.batches.setdefault(key, [])
                if matcher.pattern not in patterns:
                    patterns.append(matcher.pattern)
                return ast.Subscript(value=_name(batch_local(list(self.batches).index(key))),
                                     slice=ast.Constant(value=patterns.index(matcher.pattern)),
                                     ctx=ast.Load())
        self.generic_visit(node)
        return node

    def _matcher(self, name: str) -> Matcher | None:
        test = self.constants.get(name)
        if test is None:
            return None
        return next((m for m in self.constants.values()
                     if isinstance(m, Matcher) and m.test is test), None)

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        # hit("id") is compiled as `"id" in _e["_hits"]`: here it becomes the rule's flag.
        if (len(node.ops) == 1 and isinstance(node.ops[0], ast.In)
                and isinstance(node.left, ast.Constant) and _key(node.comparators[0]) == "_hits"):
            return _name(self.hit_locals[str(node.left.value)])
        self.generic_visit(node)
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        key = _key(node)
        if key is None:
            self.generic_visit(node)
            return node
        if key in _OUTPUT_LOCALS:
            return _name(_OUTPUT_LOCALS[key])
        local = self.hoisted.setdefault(key, f"_v{len(self.hoisted)}")
        return _name(local)


def batch_local(n: int) -> str:
    return f"_b{n}"


def _key(node: ast.AST) -> str | None:
    if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
            and node.value.id == "_e" and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)):
        return node.slice.value
    return None


def batch_line(n: int, subject: str) -> ast.stmt:
    """`_b<n> = memo.get(x) or test(x)`: an answer is a non-empty tuple, so never falsy."""
    return _store(batch_local(n), ast.BoolOp(op=ast.Or(), values=[
        ast.Call(func=ast.Attribute(value=_name(f"_bm{n}"), attr="get", ctx=ast.Load()),
                 args=[_name(subject)], keywords=[]),
        ast.Call(func=_name(f"_bt{n}"), args=[_name(subject)], keywords=[])]))


