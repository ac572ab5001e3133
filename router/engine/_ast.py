"""Small builders shared by the code generators of the fused ruleset function
(router/engine/_fused.py, router/engine/_alpha.py)."""

from __future__ import annotations

import ast
from collections.abc import Mapping

from router.engine.functions import BUILTINS, Function
from router.engine.names import DERIVED, LEAD_FIELDS

__all__ = ["load", "names_of_kind", "plugin_function", "store"]


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
