"""Compiling checked expressions: the rules of one stage become one plain Python function of
the lead environment ``_e`` (router/engine/expr.py checks them first)."""

from __future__ import annotations

import ast
import copy
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any

from router.engine._expr_nodes import CheckedExpr
from router.engine._runtime import RUNTIME
from router.engine.functions import Function

__all__ = ["StageFn", "compile_stage", "globals_for"]

def globals_for(functions: Mapping[str, Function], constants: dict[str, Any]) -> dict[str, Any]:
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
    fn: StageFn = types.FunctionType(fcode, globals_for(functions, constants), f"stage_{name}")
    return fn
