"""Small builders shared by the code generators of the fused ruleset function
(router/engine/_fused.py, router/engine/_alpha.py)."""

from __future__ import annotations

import ast
from collections.abc import Mapping

from router.engine.functions import BUILTINS, Function
from router.engine.names import DERIVED, LEAD_FIELDS

__all__ = ["inline_text_test", "load", "names_of_kind", "plugin_function", "store"]

_STR_TESTS = {"_fn_contains": "__contains__", "_fn_startswith": "startswith",
              "_fn_endswith": "endswith"}


def load(id_: str) -> ast.Name:
    return ast.Name(id=id_, ctx=ast.Load())


def store(id_: str, value: ast.expr) -> ast.stmt:
    return ast.Assign(targets=[ast.Name(id=id_, ctx=ast.Store())], value=value)


def plugin_function(name: str, functions: Mapping[str, Function]) -> bool:
    """Whether the generated name ``_fn_<x>`` calls a function a plugin registered (which may
    have side effects or read other state) rather than a built-in one."""
    fn = name[4:]
    return fn not in BUILTINS or functions.get(fn) is not BUILTINS[fn]


def names_of_kind(*kinds: str) -> frozenset[str]:
    """Lead fields and derived names whose values are of one of ``kinds``."""
    return frozenset({k for k, kind in LEAD_FIELDS.items() if kind in kinds}
                     | {k for k, (kind, _) in DERIVED.items() if kind in kinds})


def inline_text_test(node: ast.Call, text_locals: set[str],
                     functions: Mapping[str, Function]) -> ast.expr:
    """``contains/startswith/endswith(x, "literal")`` on a local holding text or null → the
    ``str`` operation itself, guarded by ``x is not None`` (what the built-in's type checks
    reduce to for such a local); the call of the built-in was a third of such a rule's cost.
    Any other call is returned unchanged."""
    func, args = node.func, node.args
    if not (isinstance(func, ast.Name) and func.id in _STR_TESTS and len(args) == 2
            and not plugin_function(func.id, functions)):
        return node
    subject, literal = args
    if not (isinstance(subject, ast.Name) and subject.id in text_locals
            and isinstance(literal, ast.Constant) and isinstance(literal.value, str)):
        return node
    if func.id == "_fn_contains":
        test: ast.expr = ast.Compare(left=literal, ops=[ast.In()], comparators=[subject])
    else:
        test = ast.Call(func=ast.Attribute(value=subject, attr=_STR_TESTS[func.id],
                                           ctx=ast.Load()), args=[literal], keywords=[])
    not_null = ast.Compare(left=load(subject.id), ops=[ast.IsNot()],
                           comparators=[ast.Constant(value=None)])
    return ast.BoolOp(op=ast.And(), values=[not_null, test])
