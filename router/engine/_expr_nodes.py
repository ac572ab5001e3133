"""The expression checker's vocabulary: limits, the public result types, typed nodes, and the
builder base that dispatches on node types (router/engine/expr.py assembles the checker).

A node the builder has no method for is refused with the message of :data:`REFUSED`, so the
allow-list is the set of ``_<NodeType>`` methods of the builder and its mixins
(router/engine/_expr_compare.py, router/engine/_expr_calls.py).
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Mapping
from typing import Any

import msgspec

from router.engine.functions import ANY, STR, TIME, Function

__all__ = ["MAX_DAYS", "MAX_DEPTH", "MAX_INT", "MAX_LIST", "MAX_LITERAL_TEXT", "MAX_NODES",
           "MAX_SOURCE", "REFUSED", "BuilderBase", "CheckedExpr", "ExprError", "Scope", "Typed",
           "env_get", "helper_call", "loose", "not_null", "suggest"]

MAX_SOURCE = 2000
MAX_DEPTH = 32
MAX_NODES = 400
MAX_LITERAL_TEXT = 1000
MAX_LIST = 1000
MAX_INT = 10**15
MAX_DAYS = 365

REFUSED = {
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


class Typed:
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


def not_null(values: list[Typed], test: ast.expr) -> ast.expr:
    """``test`` guarded by ``value is not None`` for each value that may be null."""
    guards: list[ast.expr] = [
        ast.Compare(left=v.node, ops=[ast.IsNot()], comparators=[ast.Constant(value=None)])
        for v in values if not v.nonnull]
    return ast.BoolOp(op=ast.And(), values=[*guards, test]) if guards else test


def loose(a: Typed, b: Typed) -> bool:
    """Could Python's == confuse true with 1 here? Only when a kind is known per lead only."""
    kinds = {a.type, b.type}
    return ANY in kinds and not kinds & {STR, TIME}


def env_get(key: str) -> ast.expr:
    return ast.Subscript(value=ast.Name(id="_e", ctx=ast.Load()),
                         slice=ast.Constant(value=key), ctx=ast.Load())


def helper_call(fn: str, *args: ast.expr) -> ast.expr:
    return ast.Call(func=ast.Name(id=fn, ctx=ast.Load()), args=list(args), keywords=[])


def suggest(word: str, options: Any) -> str | None:
    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return close[0] if close else None


class BuilderBase:
    """The state of checking one expression, and the dispatch on node types."""

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

    def build(self, node: ast.AST, depth: int = 0) -> Typed:
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            raise self.fail(node, "expression is nested too deeply or is too large",
                            "split it into several simpler rules")
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            refused = REFUSED.get(type(node))
            if refused is None and isinstance(node, ast.BinOp):
                refused = REFUSED.get(type(node.op))
            raise self.fail(node, refused or f"`{type(node).__name__}` is not allowed in rules",
                            "see docs/rules.md for what an expression may contain")
        result: Typed = method(node, depth + 1)
        return result

