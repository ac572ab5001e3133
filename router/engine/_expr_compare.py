"""The expression checker's comparisons: ``== != < <= > >=``, ``in`` / ``not in``, list
literals, kinds and known values (mixed into the builder of router/engine/expr.py)."""

from __future__ import annotations

import ast
from collections.abc import Callable

from router.engine._expr_nodes import (
    MAX_LIST,
    BuilderBase,
    Typed,
    helper_call,
    loose,
    not_null,
    suggest,
)
from router.engine.functions import ANY, BOOL, NUM, STR

__all__ = ["CompareBuilder"]

_OPS_CMP = {ast.Lt: "_lt", ast.LtE: "_le", ast.Gt: "_gt", ast.GtE: "_ge"}

_ORDER: dict[type[ast.cmpop], Callable[[float, float], bool]] = {
    ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b}


class CompareBuilder(BuilderBase):
    """Comparisons and membership tests; a missing value compares false."""

    def _Compare(self, node: ast.Compare, depth: int) -> Typed:
        parts: list[ast.expr] = []
        left = self.build(node.left, depth)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                right = self._container(comparator, depth)
                test = self._membership(node, left, right)
                if isinstance(op, ast.NotIn):
                    # `x not in [...]` / `"vp" not in title` are false when a value is
                    # missing, like every comparison (list literals are never missing).
                    operands = [left] if right.type.startswith("list:") else [left, right]
                    test = not_null(operands, ast.UnaryOp(op=ast.Not(), operand=test))
                parts.append(test)
                left = right
                continue
            right = self.build(comparator, depth)
            parts.append(self._comparison(node, op, left, right))
            left = right
        if len(parts) == 1:
            return Typed(parts[0], BOOL)
        return Typed(ast.BoolOp(op=ast.And(), values=parts), BOOL)

    def _comparison(self, node: ast.AST, op: ast.cmpop, left: Typed, right: Typed) -> ast.expr:
        if isinstance(op, ast.Is | ast.IsNot):
            raise self.fail(node, "`is` is not allowed", "write `x == null` or `x != null`")
        for a, b in ((left, right), (right, left)):
            self._check_domain(node, a, b)
        if isinstance(op, ast.Eq | ast.NotEq):
            for a, b in ((left, right), (right, left)):
                if isinstance(b.node, ast.Constant) and b.node.value is None:
                    if isinstance(a.node, ast.Constant):
                        # `"x" == null`: decided now (`"x" is None` is a SyntaxWarning).
                        same = a.node.value is None
                        return ast.Constant(value=same == isinstance(op, ast.Eq))
                    cls = ast.Is if isinstance(op, ast.Eq) else ast.IsNot
                    return ast.Compare(left=a.node, ops=[cls()], comparators=[b.node])
            self._check_kinds(node, left, right, ordering=False)
            if isinstance(op, ast.NotEq):
                # A missing value compares false, `!=` included: `country != "US"` is false
                # when the country is missing (test presence with `country == null`).
                if loose(left, right):
                    return helper_call("_ne", left.node, right.node)
                ne = ast.Compare(left=left.node, ops=[op], comparators=[right.node])
                return not_null([left, right], ne)
            if loose(left, right):
                return helper_call("_eq", left.node, right.node)
            return ast.Compare(left=left.node, ops=[op], comparators=[right.node])
        ranked = self._ranked(node, op, left, right)
        if ranked is not None:
            return ranked
        self._check_kinds(node, left, right, ordering=True)
        fn = _OPS_CMP[type(op)]
        # Fast paths. Two numbers that cannot be null compare without a helper; a typed field
        # (a plain lookup, cheap to repeat) against one only needs a null guard first.
        if left.type == NUM and right.type == NUM:
            cmp = ast.Compare(left=left.node, ops=[op], comparators=[right.node])
            if left.nonnull and right.nonnull:
                return cmp
            for maybe, sure in ((left, right), (right, left)):
                if sure.nonnull and isinstance(maybe.node, ast.Subscript):
                    guard = ast.Compare(left=maybe.node, ops=[ast.IsNot()],
                                        comparators=[ast.Constant(value=None)])
                    return ast.BoolOp(op=ast.And(), values=[guard, cmp])
        return helper_call(fn, left.node, right.node)

    def _ranked(self, node: ast.AST, op: ast.cmpop, left: Typed,
                right: Typed) -> ast.expr | None:
        """Ordering on an enumerated name: by its rank (status, grade), else refused."""
        for field, lit, flip in ((left, right, False), (right, left, True)):
            if field.domain is None:
                continue
            ranks = self.scope.ranks.get(field.label)
            if ranks is None:
                raise self.fail(node, f"{field.label} values have no order",
                                f'use `{field.label} in ["a", "b"]` or == instead')
            if not (isinstance(lit.node, ast.Constant) and isinstance(lit.node.value, str)):
                best = max(ranks, key=ranks.__getitem__) if ranks else "..."
                raise self.fail(node, f"{field.label} can only be ordered against a literal",
                                f'e.g. {field.label} >= "{best}"')
            pivot = ranks[lit.node.value]
            test = _ORDER[type(op)]
            keep = frozenset(v for v, r in ranks.items()
                             if (test(pivot, r) if flip else test(r, pivot)))
            return ast.Compare(left=field.node, ops=[ast.In()], comparators=[self.const(keep)])
        return None

    def _check_kinds(self, node: ast.AST, a: Typed, b: Typed, *, ordering: bool) -> None:
        if ANY in (a.type, b.type) or a.type == b.type:
            if ordering and a.type == b.type == BOOL:
                raise self.fail(node, "true/false values cannot be ordered", "use == or !=")
            return
        raise self.fail(node, f"{a.label or 'left side'} is {a.type} but "
                        f"{b.label or 'right side'} is {b.type}",
                        "compare values of the same kind (numbers without quotes)")

    def _check_domain(self, node: ast.AST, field: Typed, literal: Typed) -> None:
        if field.domain is None or not isinstance(literal.node, ast.Constant):
            return
        value = literal.node.value
        if isinstance(value, str) and value not in field.domain:
            hint = suggest(value, field.domain)
            known = ", ".join(sorted(field.domain)[:12])
            fix = (f'did you mean "{hint}"?' if hint else f"known: {known}" if known else
                   f"no {field.label} is defined in the rules yet")
            raise self.fail(node, f'"{value}" is not a known {field.label}', fix)

    def _container(self, node: ast.expr, depth: int) -> Typed:
        if isinstance(node, ast.List | ast.Tuple):
            if len(node.elts) > MAX_LIST:
                raise self.fail(node, "list is too long", f"use at most {MAX_LIST} items")
            items = [self.build(e, depth) for e in node.elts]
            values = []
            for item in items:
                if not isinstance(item.node, ast.Constant):
                    raise self.fail(node, "lists may only hold literals",
                                    'write ["US", "CA"], not names or calls')
                values.append(item.node.value)
            kinds = {i.type for i in items if i.type != ANY}
            typ = kinds.pop() if len(kinds) == 1 else ANY
            strings = frozenset(v for v in values if isinstance(v, str))
            if any(isinstance(v, int | float) for v in values):
                # Numbers (or true/false beside them): also keep a kind-tagged copy for values
                # whose kind is only known per lead (see _runtime._in_tagged).
                plain = Typed(self.const(frozenset(values)), "list:" + typ, "list", strings)
                plain.alt = self.const(frozenset((v.__class__ is bool, v) for v in values))
                return plain
            return Typed(self.const(frozenset(values)), "list:" + typ, "list", strings)
        return self.build(node, depth)

    def _membership(self, node: ast.AST, needle: Typed, hay: Typed) -> ast.expr:
        if hay.type.startswith("list:"):
            element = hay.type[5:]
            if element != ANY and needle.type not in (ANY, element):
                raise self.fail(node, f"{needle.label or 'value'} is {needle.type} but the "
                                f"list holds {element}", "make the list items the same kind")
            if needle.domain is not None and hay.domain:
                for v in hay.domain:
                    self._check_domain(node, needle, Typed(ast.Constant(value=v), STR))
            if hay.alt is not None and (needle.type in (ANY, BOOL) or element == ANY):
                # true/false never equal numbers: the kind-tagged set keeps `consent in [1]`
                # false for consent = true, and `count(...) in [0, true]` false for a count
                # of 1 (Python's `in` says True == 1).
                return helper_call("_in_tagged", needle.node, hay.alt)
            return ast.Compare(left=needle.node, ops=[ast.In()], comparators=[hay.node])
        if hay.type in (STR, ANY) and needle.type in (STR, ANY):
            return helper_call("_in_text", needle.node, hay.node)
        raise self.fail(node, f"`in` needs a list or a text on its right, not {hay.type}",
                        'write `x in ["a", "b"]` or `"part" in text`')
