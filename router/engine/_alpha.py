"""Memoised runs of scoring rules that read one field (an "alpha memory", as in Rete).

Scoring rules come in families over one field: four size bands on ``employees``, four budget
bands, four seniority patterns on ``title``. Their joint outcome depends on that field's value
alone, and values repeat a lot across leads (a few dozen titles, a handful of budgets), so the
fused function runs each such *consecutive* run of rules once per distinct value and keeps the
outcome — contributions, points per group, hit() flags, errors — in a bounded dict keyed by
the value; later leads with that value pay one dict lookup and a few list extensions.

Only rules that are pure functions of the field qualify: they read that field (or the RE2 set
answers about it) and constants, and call only built-in functions — never a plugin function
(which may read anything), an earlier output, hit(), the engagement snapshot or ``now``.
Contributions keep the rule order, so the result is exactly the rule-by-rule one (a test runs
both on generated leads).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence

from router.engine._ast import load as _name
from router.engine._ast import names_of_kind, plugin_function
from router.engine._ast import store as _store
from router.engine.functions import BOOL, NUM, STR, Function

__all__ = ["MEMO_KINDS", "MEMO_SIZE", "group_call", "group_function", "single_key"]

MEMO_SIZE = 4096
# Kinds whose values are hashable scalars (a memo key); `1 == True` cannot mix within a field.
MEMO_KINDS = frozenset({STR, NUM, BOOL})
_KEYABLE = names_of_kind(*MEMO_KINDS)


def single_key(test: ast.expr, locals_: Mapping[str, str], batches: Mapping[str, str],
               functions: Mapping[str, Function]) -> str | None:
    """The one field a rewritten rule test reads, if it is a pure function of it; else None.

    ``locals_`` maps hoisted locals (``_v3``) and ``batches`` MatchSet locals (``_b1``) to the
    field they hold.
    """
    keys: set[str] = set()
    temps = {n.target.id for n in ast.walk(test)
             if isinstance(n, ast.NamedExpr) and isinstance(n.target, ast.Name)}
    for node in ast.walk(test):
        if not isinstance(node, ast.Name) or not isinstance(node.ctx, ast.Load):
            continue
        name = node.id
        if name in locals_:
            keys.add(locals_[name])
        elif name in batches:
            keys.add(batches[name])
        elif name in temps:
            continue
        elif name.startswith("_fn_"):
            if plugin_function(name, functions):
                return None  # may be impure or read other state
        elif name.startswith(("_o_", "_h", "_a_", "_e", "_x", "_m", "_i")):
            return None  # an earlier output, hit(), the snapshot, now...
    if len(keys) != 1:
        return None
    (key,) = keys
    return key if key in _KEYABLE else None


def group_function(n: int, local: str, batch_lines: Sequence[ast.stmt],
                   blocks: Sequence[ast.stmt], hits: Sequence[str]) -> ast.FunctionDef:
    """``_gf<n>(value, errors)``: run the rule blocks (which use the fused function's local
    names) on one value, memoise and return (contributions, fit, bant, engagement, hits).

    A rule that raises appends to the caller's ``errors`` list directly, and the outcome is
    then not memoised, so every lead with that value reports it; the caller never checks
    for errors on the (memoised) fast path.
    """
    body: list[ast.stmt] = [*batch_lines, _store("_m", ast.List(elts=[], ctx=ast.Load())),
                            _store("_xn", _len("_x"))]
    for total in ("_o_fit", "_o_bant", "_o_eng"):
        body.append(_store(total, ast.Constant(value=0.0)))
    for hit in hits:
        body.append(_store(hit, ast.Constant(value=False)))
    body.extend(blocks)
    memo = _name(f"_gm{n}")
    body += [
        _store("_g", ast.Tuple(elts=[
            ast.Call(func=_name("_B_tuple"), args=[_name("_m")], keywords=[]),
            _name("_o_fit"), _name("_o_bant"), _name("_o_eng"),
            ast.Tuple(elts=[_name(h) for h in hits], ctx=ast.Load())], ctx=ast.Load())),
        ast.If(test=ast.Compare(left=_len("_x"), ops=[ast.Eq()], comparators=[_name("_xn")]),
               body=[
                   ast.If(test=ast.Compare(left=_len(f"_gm{n}"), ops=[ast.GtE()],
                                           comparators=[ast.Constant(value=MEMO_SIZE)]),
                          body=[ast.Expr(value=ast.Call(func=ast.Attribute(
                              value=memo, attr="clear", ctx=ast.Load()), args=[],
                              keywords=[]))], orelse=[]),
                   ast.Assign(targets=[ast.Subscript(value=memo, slice=_name(local),
                                                     ctx=ast.Store())], value=_name("_g"))],
               orelse=[]),
        ast.Return(value=_name("_g")),
    ]
    return ast.FunctionDef(
        name=f"_gf{n}",
        args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=local), ast.arg(arg="_x")],
                           vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None,
                           defaults=[]),
        body=body, decorator_list=[], returns=None)


def _len(name: str) -> ast.expr:
    return ast.Call(func=_name("_B_len"), args=[_name(name)], keywords=[])


def group_call(n: int, local: str, sums: Sequence[str], hits: Sequence[str]) -> list[ast.stmt]:
    """The fused function's side: look the value up, else compute; merge the outcome."""
    g = _name(f"_g{n}")

    def item(i: int) -> ast.expr:
        return ast.Subscript(value=g, slice=ast.Constant(value=i), ctx=ast.Load())

    def extend(target: str, i: int) -> ast.stmt:
        return ast.Expr(value=ast.Call(func=ast.Attribute(value=_name(target), attr="extend",
                                                          ctx=ast.Load()),
                                       args=[item(i)], keywords=[]))

    slots = {"_o_fit": 1, "_o_bant": 2, "_o_eng": 3}
    merge: list[ast.stmt] = [extend("_m", 0)]
    merge += [ast.AugAssign(target=ast.Name(id=s, ctx=ast.Store()), op=ast.Add(),
                            value=item(slots[s])) for s in sums]
    if hits:
        merge.append(ast.Assign(targets=[ast.Tuple(elts=[ast.Name(id=h, ctx=ast.Store())
                                                         for h in hits], ctx=ast.Store())],
                                value=item(4)))
    lookup = ast.Call(func=ast.Attribute(value=_name(f"_gm{n}"), attr="get", ctx=ast.Load()),
                      args=[_name(local)], keywords=[])
    return [
        _store(f"_g{n}", lookup),
        ast.If(test=ast.Compare(left=g, ops=[ast.Is()], comparators=[ast.Constant(value=None)]),
               body=[_store(f"_g{n}", ast.Call(func=_name(f"_gf{n}"),
                                               args=[_name(local), _name("_x")],
                                               keywords=[]))], orelse=[]),
        ast.If(test=item(0), body=merge, orelse=[]),
    ]
