"""Value semantics of the rule language, independent of the compiled engine's runtime.

What a comparison, an arithmetic operator or truthiness means for the values of a lead: the
translator uses these to fold conditions between literals and to evaluate, in Python, the values
durable-rules cannot compute.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

_ORDER = {ast.Lt: "lt", ast.LtE: "lte", ast.Gt: "gt", ast.GtE: "gte"}
_FLIP = {"lt": "gt", "gt": "lt", "lte": "gte", "gte": "lte", "eq": "eq", "neq": "neq"}
_PY_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge}
_ARITH: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}


def _is_num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _truthy(x: Any) -> bool:
    return bool(x)


def _order(op: str, a: Any, b: Any) -> bool:
    if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
        return False
    try:
        return bool(_PY_ORDER[op](a, b))
    except TypeError:
        return False


def _arith(op: type, a: Any, b: Any) -> Any:
    if op is ast.Add and isinstance(a, str) and isinstance(b, str):
        return a + b
    if not (_is_num(a) and _is_num(b)):
        return None
    if op in (ast.Div, ast.FloorDiv, ast.Mod) and b == 0:
        return None
    try:
        return _ARITH[op](a, b)
    except OverflowError:
        return None


def _same(a: Any, b: Any) -> bool:
    """The language's ==: Python's, except that true/false never equal numbers."""
    return bool(a == b) and isinstance(a, bool) == isinstance(b, bool)


def _not_same(a: Any, b: Any) -> bool:
    return not _same(a, b)


def _different(a: Any, b: Any) -> bool:
    """!=: false when either side is missing."""
    return a is not None and b is not None and not _same(a, b)


def _in_list(items: list[Any]) -> Callable[[Any, Any], bool]:
    return lambda a, b: any(_same(a, v) for v in items)


def _in_text(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a in b


def _needle_present(a: Any, b: Any) -> bool:
    return a is not None


def _both_present(a: Any, b: Any) -> bool:
    return a is not None and b is not None


def _absent_or(needs: Callable[[Any, Any], bool],
               found: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """``not in``: false when a side it reads is missing, else not found."""
    return lambda a, b: needs(a, b) and not found(a, b)


def _member_of(keep: frozenset[str], *, first: bool) -> Callable[[Any, Any], bool]:
    if first:
        return lambda a, b: a in keep
    return lambda a, b: b in keep


def _neg(a: Any) -> Any:
    return -a if _is_num(a) else None


def _pos(a: Any) -> Any:
    return a if _is_num(a) else None
