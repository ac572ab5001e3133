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
"""

from __future__ import annotations

import ast
import copy
import difflib
import math
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from router.engine._runtime import RUNTIME
from router.engine.functions import ANY, BOOL, NUM, STR, TIME, Function, Matcher

__all__ = ["CheckedExpr", "ExprError", "Scope", "check", "compile_stage"]

MAX_SOURCE = 2000
MAX_DEPTH = 32
MAX_NODES = 400
MAX_LITERAL_TEXT = 1000
MAX_LIST = 1000
MAX_INT = 10**15
MAX_DAYS = 365

_OPS_CMP = {ast.Lt: "_lt", ast.LtE: "_le", ast.Gt: "_gt", ast.GtE: "_ge"}
_OPS_ARITH = {ast.Add: "_add", ast.Sub: "_sub", ast.Mult: "_mul", ast.Div: "_div",
              ast.FloorDiv: "_floordiv", ast.Mod: "_mod"}
_CONSTANT_NAMES = {"true": True, "false": False, "null": None,
                   "True": True, "False": False, "None": None}
_REFUSED = {
    ast.Pow: "`**` is not allowed (it can take unbounded time and memory); write the number out",
    ast.Lambda: "lambdas are not allowed; a rule is one expression",
    ast.ListComp: "comprehensions are not allowed; use `x in [..]` or several rules",
    ast.SetComp: "comprehensions are not allowed; use `x in [..]` or several rules",
    ast.DictComp: "comprehensions are not allowed; use `x in [..]` or several rules",
    ast.GeneratorExp: "generators are not allowed; use `x in [..]` or several rules",
    ast.NamedExpr: "`:=` is not allowed; a rule is one expression",
    ast.JoinedStr: "f-strings are not allowed; use a plain \"string\"",
    ast.Starred: "`*` unpacking is not allowed",
    ast.Dict: "dict literals are not allowed",
    ast.Set: "set literals are not allowed; use a list `[..]` after `in`",
    ast.Await: "`await` is not allowed",
    ast.Yield: "`yield` is not allowed",
    ast.YieldFrom: "`yield` is not allowed",
    ast.Slice: "slices are not allowed",
    ast.List: "a list can only follow `in`, as in `country in [\"US\", \"CA\"]`",
    ast.Tuple: "a list can only follow `in`, as in `country in [\"US\", \"CA\"]`",
}


class ExprError(Exception):
    """An expression was refused; ``col`` is the 0-based offset of the culprit in the source."""

    def __init__(self, message: str, fix: str | None = None, *, line: int = 1, col: int = 0):
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.line = line
        self.col = col


class Scope(msgspec.Struct, frozen=True, kw_only=True):
    """What an expression in one stage may refer to."""

    stage: str
    names: Mapping[str, str]
    later: Mapping[str, str] = {}
    domains: Mapping[str, frozenset[str]] = {}
    # Names whose values have a meaningful order: value -> rank (status: bad_lead < nurture <
    # mql < sql; grade: by threshold). Other enumerated names cannot be ordered.
    ranks: Mapping[str, Mapping[str, float]] = {}
    functions: Mapping[str, Function] = {}
    hit_ids: frozenset[str] | None = None
    # Names that always hold a value (point totals, now): compared without a null guard.
    never_null: frozenset[str] = frozenset()


class CheckedExpr(msgspec.Struct, frozen=True, kw_only=True):
    """A checked expression: its rebuilt tree, the constants it needs, what state it reads."""

    source: str
    node: Any
    constants: dict[str, Any]
    windows: frozenset[tuple[str, int]] = frozenset()
    last_events: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()


class _Typed:
    """A rebuilt node with what the checker knows about it.

    ``nonnull`` marks values that can never be null (literals, ``count()``): comparing two of
    them with the same kind cannot raise, so the compiler emits a bare comparison.
    """

    __slots__ = ("alt", "domain", "label", "node", "nonnull", "type")

    def __init__(self, node: ast.expr, typ: str, label: str = "",
                 domain: frozenset[str] | None = None, *, nonnull: bool = False) -> None:
        self.node, self.type, self.label, self.domain = node, typ, label, domain
        self.nonnull = nonnull or (isinstance(node, ast.Constant) and node.value is not None)
        self.alt: ast.expr | None = None  # lists: the kind-tagged set (see _runtime._in_tagged)


def _not_null(values: list[_Typed], test: ast.expr) -> ast.expr:
    """``test`` guarded by ``value is not None`` for each value that may be null."""
    guards: list[ast.expr] = [
        ast.Compare(left=v.node, ops=[ast.IsNot()], comparators=[ast.Constant(value=None)])
        for v in values if not v.nonnull]
    return ast.BoolOp(op=ast.And(), values=[*guards, test]) if guards else test


_ORDER: dict[type[ast.cmpop], Callable[[float, float], bool]] = {
    ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b}


def _loose(a: _Typed, b: _Typed) -> bool:
    """Could Python's == confuse true with 1 here? Only when a kind is known per lead only."""
    kinds = {a.type, b.type}
    return ANY in kinds and not kinds & {STR, TIME}


def _env(key: str) -> ast.expr:
    return ast.Subscript(value=ast.Name(id="_e", ctx=ast.Load()),
                         slice=ast.Constant(value=key), ctx=ast.Load())


def _call(fn: str, *args: ast.expr) -> ast.expr:
    return ast.Call(func=ast.Name(id=fn, ctx=ast.Load()), args=list(args), keywords=[])


# Calls whose result build_env computes once per lead anyway: (function, argument) -> name.
_DERIVED_CALLS = {
    ("is_free_email", "email"): "free_email",
    ("is_disposable_email", "email"): "disposable_email",
    ("domain", "email"): "email_domain",
    ("region", "country"): "region",
}


def _arg_name(node: ast.Call) -> str | None:
    if len(node.args) == 1 and isinstance(node.args[0], ast.Name):
        return node.args[0].id
    return None


def _suggest(word: str, options: Any) -> str | None:
    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return close[0] if close else None


class _Builder:
    def __init__(self, source: str, scope: Scope, prefix: str) -> None:
        self.source, self.scope, self.prefix = source, scope, prefix
        self.constants: dict[str, Any] = {}
        self.windows: set[tuple[str, int]] = set()
        self.last_events: set[str] = set()
        self.names: set[str] = set()
        self.nodes = 0

    def fail(self, node: ast.AST, message: str, fix: str | None = None) -> ExprError:
        return ExprError(message, fix, line=getattr(node, "lineno", 1),
                         col=getattr(node, "col_offset", 0))

    def const(self, value: Any) -> ast.expr:
        key = f"_k{self.prefix}_{len(self.constants)}"
        self.constants[key] = value
        return ast.Name(id=key, ctx=ast.Load())

    def build(self, node: ast.AST, depth: int = 0) -> _Typed:
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            raise self.fail(node, "expression is nested too deeply or is too large",
                            "split it into several simpler rules")
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            refused = _REFUSED.get(type(node))
            if refused is None and isinstance(node, ast.BinOp):
                refused = _REFUSED.get(type(node.op))
            raise self.fail(node, refused or f"`{type(node).__name__}` is not allowed in rules",
                            "see docs/rules.md for what an expression may contain")
        result: _Typed = method(node, depth + 1)
        return result

    # -- leaves ------------------------------------------------------------------------------
    def _Constant(self, node: ast.Constant, depth: int) -> _Typed:
        v = node.value
        if v is None or isinstance(v, bool):
            return _Typed(ast.Constant(value=v), BOOL if isinstance(v, bool) else ANY, repr(v))
        if isinstance(v, int):
            if abs(v) > MAX_INT:
                raise self.fail(node, f"number {v} is too large", f"use at most {MAX_INT:,}")
            return _Typed(ast.Constant(value=v), NUM, str(v))
        if isinstance(v, float):
            if not math.isfinite(v) or abs(v) > MAX_INT:
                raise self.fail(node, f"number {v} is out of range", f"use at most {MAX_INT:,}")
            return _Typed(ast.Constant(value=v), NUM, str(v))
        if isinstance(v, str):
            if len(v) > MAX_LITERAL_TEXT:
                raise self.fail(node, "text literal is too long",
                                f"keep literals under {MAX_LITERAL_TEXT} characters")
            return _Typed(ast.Constant(value=v), STR, f'"{v}"')
        raise self.fail(node, f"literal {v!r} is not allowed",
                        "use numbers, \"text\", true, false or null")

    def _Name(self, node: ast.Name, depth: int) -> _Typed:
        name = node.id
        if name in _CONSTANT_NAMES:
            value = _CONSTANT_NAMES[name]
            return _Typed(ast.Constant(value=value), ANY if value is None else BOOL, name)
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
            hint = _suggest(name, [*self.scope.names, *self.scope.functions])
            raise self.fail(node, f"unknown name `{name}`",
                            f"did you mean `{hint}`?" if hint else
                            "use a lead field (see docs/rules.md) or attributes.<name>")
        self.names.add(name)
        return _Typed(_env(name), typ, name, self.scope.domains.get(name),
                      nonnull=name in self.scope.never_null)

    def _Attribute(self, node: ast.Attribute, depth: int) -> _Typed:
        if isinstance(node.value, ast.Name) and node.value.id == "attributes":
            return self._attribute_field(node, node.attr)
        raise self.fail(node, "attribute access is not allowed",
                        "fields are plain names (`title`); custom fields are attributes.<name>")

    def _Subscript(self, node: ast.Subscript, depth: int) -> _Typed:
        key = node.slice
        if (isinstance(node.value, ast.Name) and node.value.id == "attributes"
                and isinstance(key, ast.Constant) and isinstance(key.value, str)):
            return self._attribute_field(node, key.value)
        raise self.fail(node, "indexing is not allowed",
                        'only attributes["custom field"] may be indexed, with a text literal')

    def _attribute_field(self, node: ast.AST, key: str) -> _Typed:
        if key.startswith("__") or len(key) > 64:
            raise self.fail(node, f"attribute name `{key}` is not allowed",
                            "use the custom field's plain name")
        self.names.add("attributes")
        get = ast.Call(func=ast.Attribute(value=_env("attributes"), attr="get", ctx=ast.Load()),
                       args=[ast.Constant(value=key)], keywords=[])
        return _Typed(get, ANY, f"attributes.{key}")

    # -- operators ---------------------------------------------------------------------------
    def _BoolOp(self, node: ast.BoolOp, depth: int) -> _Typed:
        values = [self.build(v, depth) for v in node.values]
        typ = BOOL if all(v.type == BOOL for v in values) else ANY
        return _Typed(ast.BoolOp(op=node.op, values=[v.node for v in values]), typ)

    def _UnaryOp(self, node: ast.UnaryOp, depth: int) -> _Typed:
        operand = self.build(node.operand, depth)
        if isinstance(node.op, ast.Not):
            return _Typed(ast.UnaryOp(op=ast.Not(), operand=operand.node), BOOL)
        if isinstance(node.op, ast.USub | ast.UAdd):
            if operand.type not in (NUM, ANY):
                raise self.fail(node, f"{operand.label or 'this value'} is {operand.type}, "
                                "not a number", "use a numeric field or literal")
            if isinstance(operand.node, ast.Constant):
                value = operand.node.value
                if isinstance(value, int | float) and not isinstance(value, bool):
                    signed = -value if isinstance(node.op, ast.USub) else value
                    return _Typed(ast.Constant(value=signed), NUM, str(signed))
            fn = "_neg" if isinstance(node.op, ast.USub) else "_pos"
            return _Typed(_call(fn, operand.node), NUM if operand.type == NUM else ANY)
        raise self.fail(node, "bitwise operators are not allowed", "use `not`, `and`, `or`")

    def _BinOp(self, node: ast.BinOp, depth: int) -> _Typed:
        fn = _OPS_ARITH.get(type(node.op))
        if fn is None:
            refused = _REFUSED.get(type(node.op), "this operator is not allowed")
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
        return _Typed(_call(fn, left.node, right.node), typ)

    def _IfExp(self, node: ast.IfExp, depth: int) -> _Typed:
        test, body, orelse = (self.build(n, depth) for n in (node.test, node.body, node.orelse))
        typ = body.type if body.type == orelse.type else ANY
        return _Typed(ast.IfExp(test=test.node, body=body.node, orelse=orelse.node), typ)

    def _Compare(self, node: ast.Compare, depth: int) -> _Typed:
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
                    test = _not_null(operands, ast.UnaryOp(op=ast.Not(), operand=test))
                parts.append(test)
                left = right
                continue
            right = self.build(comparator, depth)
            parts.append(self._comparison(node, op, left, right))
            left = right
        if len(parts) == 1:
            return _Typed(parts[0], BOOL)
        return _Typed(ast.BoolOp(op=ast.And(), values=parts), BOOL)

    def _comparison(self, node: ast.AST, op: ast.cmpop, left: _Typed, right: _Typed) -> ast.expr:
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
                if _loose(left, right):
                    return _call("_ne", left.node, right.node)
                ne = ast.Compare(left=left.node, ops=[op], comparators=[right.node])
                return _not_null([left, right], ne)
            if _loose(left, right):
                return _call("_eq", left.node, right.node)
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
        return _call(fn, left.node, right.node)

    def _ranked(self, node: ast.AST, op: ast.cmpop, left: _Typed,
                right: _Typed) -> ast.expr | None:
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

    def _check_kinds(self, node: ast.AST, a: _Typed, b: _Typed, *, ordering: bool) -> None:
        if ANY in (a.type, b.type) or a.type == b.type:
            if ordering and a.type == b.type == BOOL:
                raise self.fail(node, "true/false values cannot be ordered", "use == or !=")
            return
        raise self.fail(node, f"{a.label or 'left side'} is {a.type} but "
                        f"{b.label or 'right side'} is {b.type}",
                        "compare values of the same kind (numbers without quotes)")

    def _check_domain(self, node: ast.AST, field: _Typed, literal: _Typed) -> None:
        if field.domain is None or not isinstance(literal.node, ast.Constant):
            return
        value = literal.node.value
        if isinstance(value, str) and value not in field.domain:
            hint = _suggest(value, field.domain)
            known = ", ".join(sorted(field.domain)[:12])
            fix = (f'did you mean "{hint}"?' if hint else f"known: {known}" if known else
                   f"no {field.label} is defined in the rules yet")
            raise self.fail(node, f'"{value}" is not a known {field.label}', fix)

    def _container(self, node: ast.expr, depth: int) -> _Typed:
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
                plain = _Typed(self.const(frozenset(values)), "list:" + typ, "list", strings)
                plain.alt = self.const(frozenset((v.__class__ is bool, v) for v in values))
                return plain
            return _Typed(self.const(frozenset(values)), "list:" + typ, "list", strings)
        return self.build(node, depth)

    def _membership(self, node: ast.AST, needle: _Typed, hay: _Typed) -> ast.expr:
        if hay.type.startswith("list:"):
            element = hay.type[5:]
            if element != ANY and needle.type not in (ANY, element):
                raise self.fail(node, f"{needle.label or 'value'} is {needle.type} but the "
                                f"list holds {element}", "make the list items the same kind")
            if needle.domain is not None and hay.domain:
                for v in hay.domain:
                    self._check_domain(node, needle, _Typed(ast.Constant(value=v), STR))
            if hay.alt is not None and (needle.type in (ANY, BOOL) or element == ANY):
                # true/false never equal numbers: the kind-tagged set keeps `consent in [1]`
                # false for consent = true, and `count(...) in [0, true]` false for a count
                # of 1 (Python's `in` says True == 1).
                return _call("_in_tagged", needle.node, hay.alt)
            return ast.Compare(left=needle.node, ops=[ast.In()], comparators=[hay.node])
        if hay.type in (STR, ANY) and needle.type in (STR, ANY):
            return _call("_in_text", needle.node, hay.node)
        raise self.fail(node, f"`in` needs a list or a text on its right, not {hay.type}",
                        'write `x in ["a", "b"]` or `"part" in text`')

    # -- calls -------------------------------------------------------------------------------
    def _Call(self, node: ast.Call, depth: int) -> _Typed:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, "only plain function calls are allowed",
                            "call a rule function by name, e.g. lower(title)")
        name = node.func.id
        fn = self.scope.functions.get(name)
        if fn is None:
            hint = _suggest(name, self.scope.functions)
            raise self.fail(node, f"unknown function `{name}`",
                            f"did you mean `{hint}`?" if hint else
                            "see docs/rules.md for the function list")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(node, "`*` unpacking is not allowed", f"example: {fn.example}")
        if len(node.args) != len(fn.params):
            raise self.fail(node, f"{name}() takes {len(fn.params)} argument(s), "
                            f"got {len(node.args)}", f"example: {fn.example}")
        for kw in node.keywords:
            if kw.arg is None or kw.arg not in fn.keywords:
                raise self.fail(node, f"{name}() has no option `{kw.arg}`",
                                f"example: {fn.example}")
        missing = set(fn.keywords) - {kw.arg for kw in node.keywords}
        if missing:
            raise self.fail(node, f"{name}() needs {', '.join(sorted(missing))}=",
                            f"example: {fn.example}")
        special = getattr(self, f"_fn_{name}", None) if fn.special else None
        if special is not None:
            typed: _Typed = special(node, fn, depth)
            return typed
        derived = _DERIVED_CALLS.get((name, _arg_name(node) or ""))
        if derived is not None and derived in self.scope.names:
            # build_env already computed this per lead (e.g. is_free_email(email)).
            self.names.add(derived)
            return _Typed(_env(derived), fn.returns, f"{name}()",
                          self.scope.domains.get(f"{name}()"))
        args = [self.build(a, depth) for a in node.args]
        for arg, want in zip(args, fn.params, strict=True):
            if want != ANY and arg.type not in (ANY, want):
                raise self.fail(node, f"{name}() expects {want}, got {arg.label or arg.type} "
                                f"({arg.type})", f"example: {fn.example}")
        domain = self.scope.domains.get(f"{name}()")
        return _Typed(_call(f"_fn_{name}", *[a.node for a in args]), fn.returns, f"{name}()",
                      domain)

    def _literal_text(self, node: ast.Call, fn: Function, index: int = 0) -> str:
        arg = node.args[index]
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            raise self.fail(node, f"{fn.name}() needs a text literal here",
                            f"example: {fn.example}")
        return arg.value

    def _fn_matches(self, node: ast.Call, fn: Function, depth: int) -> _Typed:
        text = self.build(node.args[0], depth)
        if text.type not in (STR, ANY):
            raise self.fail(node, f"matches() expects text, got {text.label or text.type} "
                            f"({text.type})", f"example: {fn.example}")
        pattern = self._literal_text(node, fn, 1)
        if len(pattern) > MAX_LITERAL_TEXT:
            raise self.fail(node, "regular expression is too long", "simplify the pattern")
        try:
            matcher = Matcher(pattern)
        except Exception as exc:  # re2.error, but the binding raises a few kinds
            detail = exc.args[0] if exc.args else exc
            if isinstance(detail, bytes):
                detail = detail.decode("utf-8", "replace")
            raise self.fail(node, f"invalid regular expression: {detail}",
                            "RE2 syntax: no backreferences or lookaround") from None
        # Inline memo lookup, RE2 only on a miss: `(m if (m := memo.get(x)) is not None else
        # test(x))`. Only for simple subjects, which are cheap and pure to evaluate twice.
        # The Matcher itself is kept among the constants too: the fused ruleset function finds
        # it there and answers every pattern on the same field with one RE2 call (MatchSet).
        self.const(matcher)
        call = ast.Call(func=self.const(matcher.test), args=[text.node], keywords=[])
        if not isinstance(text.node, ast.Subscript | ast.Name):
            return _Typed(call, BOOL, "matches()")
        temp = f"_r{self.prefix}_{len(self.constants)}"
        get = ast.Call(func=ast.Attribute(value=self.const(matcher.memo), attr="get",
                                          ctx=ast.Load()), args=[text.node], keywords=[])
        walrus = ast.NamedExpr(target=ast.Name(id=temp, ctx=ast.Store()), value=get)
        test = ast.Compare(left=walrus, ops=[ast.IsNot()], comparators=[ast.Constant(value=None)])
        return _Typed(ast.IfExp(test=test, body=ast.Name(id=temp, ctx=ast.Load()), orelse=call),
                      BOOL, "matches()")

    def _fn_hit(self, node: ast.Call, fn: Function, depth: int) -> _Typed:
        rule = self._literal_text(node, fn)
        if self.scope.hit_ids is None:
            raise self.fail(node, f"hit() is not available in {self.scope.stage} rules",
                            "use hit() in qualification, routing or SLA rules")
        if rule not in self.scope.hit_ids:
            hint = _suggest(rule, self.scope.hit_ids)
            raise self.fail(node, f'hit("{rule}"): no scoring rule has that id',
                            f'did you mean "{hint}"?' if hint else "use a scoring rule id")
        self.names.add("_hits")
        return _Typed(ast.Compare(left=ast.Constant(value=rule), ops=[ast.In()],
                                  comparators=[_env("_hits")]), BOOL, f'hit("{rule}")')

    def _fn_count(self, node: ast.Call, fn: Function, depth: int) -> _Typed:
        event = self._literal_text(node, fn)
        days = node.keywords[0].value
        if not (isinstance(days, ast.Constant) and type(days.value) is int
                and 1 <= days.value <= MAX_DAYS):
            raise self.fail(node, f"count(): days must be a whole number from 1 to {MAX_DAYS}",
                            f"example: {fn.example}")
        self.windows.add((event, days.value))
        key = ast.Tuple(elts=[ast.Constant(value=event), ast.Constant(value=days.value)],
                        ctx=ast.Load())
        get = ast.Call(func=ast.Attribute(value=_env("_counts"), attr="get", ctx=ast.Load()),
                       args=[key, ast.Constant(value=0)], keywords=[])
        return _Typed(get, NUM, f'count("{event}")', nonnull=True)

    def _fn_last(self, node: ast.Call, fn: Function, depth: int) -> _Typed:
        event = self._literal_text(node, fn)
        self.last_events.add(event)
        get = ast.Call(func=ast.Attribute(value=_env("_last"), attr="get", ctx=ast.Load()),
                       args=[ast.Constant(value=event)], keywords=[])
        return _Typed(get, TIME, f'last("{event}")')

    def _fn_days_since(self, node: ast.Call, fn: Function, depth: int) -> _Typed:
        when = self.build(node.args[0], depth)
        if when.type not in (TIME, ANY):
            raise self.fail(node, f"days_since() expects a datetime, got {when.type}",
                            f"example: {fn.example}")
        self.names.add("now")
        return _Typed(_call("_fn_days_since", when.node, _env("now")), NUM, "days_since()")


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


def _globals(functions: Mapping[str, Function], constants: dict[str, Any]) -> dict[str, Any]:
    g: dict[str, Any] = {"__builtins__": {}, "Exception": Exception, **RUNTIME, **constants}
    for name, fn in functions.items():
        if fn.impl is not None:
            g[f"_fn_{name}"] = fn.impl
    return g


StageFn = Callable[[dict[str, Any]], tuple[Any, list[int]]]


class _Hoist(ast.NodeTransformer):
    """Replace `_e["name"]` lookups by locals `_v<n>` and remember which names to load."""

    def __init__(self) -> None:
        self.keys: dict[str, str] = {}

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        if (isinstance(node.value, ast.Name) and node.value.id == "_e"
                and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str)):
            key = node.slice.value
            local = self.keys.setdefault(key, f"_v{len(self.keys)}")
            return ast.Name(id=local, ctx=ast.Load())
        self.generic_visit(node)
        return node


def compile_stage(name: str, mode: str, exprs: list[CheckedExpr],
                  functions: Mapping[str, Function]) -> StageFn:
    """Compile the rules of one stage into one function of the lead environment.

    ``mode="collect"`` returns ``(indices of every matching rule, indices that raised)``;
    ``mode="first"`` returns ``(index of the first match or -1, indices that raised)``. A rule
    that raises (only possible through a plugin function) counts as not matching.
    """
    body: list[ast.stmt] = [ast.Assign(targets=[ast.Name(id="_x", ctx=ast.Store())],
                                       value=ast.List(elts=[], ctx=ast.Load()))]
    if mode == "collect":
        body.append(ast.Assign(targets=[ast.Name(id="_m", ctx=ast.Store())],
                               value=ast.List(elts=[], ctx=ast.Load())))
    constants: dict[str, Any] = {}
    # Every env name the stage reads is looked up once, into a local: rules repeat fields a lot
    # (`title != null and matches(title, ...)`), and LOAD_FAST beats a dict subscript.
    hoist = _Hoist()
    nodes = [hoist.visit(copy.deepcopy(ex.node)) for ex in exprs]
    for key in sorted(hoist.keys):
        body.append(ast.Assign(
            targets=[ast.Name(id=hoist.keys[key], ctx=ast.Store())],
            value=ast.Call(func=ast.Attribute(value=ast.Name(id="_e", ctx=ast.Load()),
                                              attr="get", ctx=ast.Load()),
                           args=[ast.Constant(value=key)], keywords=[])))
    for i, (ex, test) in enumerate(zip(exprs, nodes, strict=True)):
        constants.update(ex.constants)
        action: ast.stmt
        if mode == "collect":
            action = ast.Expr(value=ast.Call(
                func=ast.Attribute(value=ast.Name(id="_m", ctx=ast.Load()), attr="append",
                                   ctx=ast.Load()), args=[ast.Constant(value=i)], keywords=[]))
        else:
            action = ast.Return(value=ast.Tuple(
                elts=[ast.Constant(value=i), ast.Name(id="_x", ctx=ast.Load())], ctx=ast.Load()))
        on_error = ast.Expr(value=ast.Call(
            func=ast.Attribute(value=ast.Name(id="_x", ctx=ast.Load()), attr="append",
                               ctx=ast.Load()), args=[ast.Constant(value=i)], keywords=[]))
        body.append(ast.Try(
            body=[ast.If(test=test, body=[action], orelse=[])],
            handlers=[ast.ExceptHandler(type=ast.Name(id="Exception", ctx=ast.Load()),
                                        name=None, body=[on_error])],
            orelse=[], finalbody=[]))
    result = ast.Name(id="_m", ctx=ast.Load()) if mode == "collect" else ast.Constant(value=-1)
    body.append(ast.Return(value=ast.Tuple(elts=[result, ast.Name(id="_x", ctx=ast.Load())],
                                           ctx=ast.Load())))
    fdef = ast.FunctionDef(
        name=f"stage_{name}",
        args=ast.arguments(posonlyargs=[], args=[ast.arg(arg="_e")], vararg=None,
                           kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[]),
        body=body, decorator_list=[], returns=None)
    if sys.version_info >= (3, 12):
        fdef.type_params = []
    module = ast.Module(body=[fdef], type_ignores=[])
    ast.fix_missing_locations(module)
    code = compile(module, f"<rules:{name}>", "exec")
    fcode = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    fn: StageFn = types.FunctionType(fcode, _globals(functions, constants), f"stage_{name}")
    return fn
