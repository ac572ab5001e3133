"""Null-safe operators that compiled rule expressions call.

The language promises that a missing value (null) never raises: ordering comparisons involving
null (or values that cannot be ordered against each other) are false, and arithmetic involving
null or mismatched kinds is null. Booleans are not numbers here, as at load (`consent > false` is
refused): ordering one is false and arithmetic on one is null. A result too large for a float
(``OverflowError``) is null too, so the built-in operators never raise. The compiler inlines the
common typed cases (a number field against a number literal) and calls these helpers only where
the kinds are known per lead only.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RUNTIME"]


def _num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _lt(a: Any, b: Any) -> bool:
    if a.__class__ is bool or b.__class__ is bool:
        return False
    try:
        return bool(a < b)
    except TypeError:
        return False


def _le(a: Any, b: Any) -> bool:
    if a.__class__ is bool or b.__class__ is bool:
        return False
    try:
        return bool(a <= b)
    except TypeError:
        return False


def _gt(a: Any, b: Any) -> bool:
    if a.__class__ is bool or b.__class__ is bool:
        return False
    try:
        return bool(a > b)
    except TypeError:
        return False


def _ge(a: Any, b: Any) -> bool:
    if a.__class__ is bool or b.__class__ is bool:
        return False
    try:
        return bool(a >= b)
    except TypeError:
        return False


def _add(a: Any, b: Any) -> Any:
    if _num(a) and _num(b):
        try:
            return a + b
        except OverflowError:
            return None
    if isinstance(a, str) and isinstance(b, str):
        return a + b
    return None


def _sub(a: Any, b: Any) -> Any:
    if not (_num(a) and _num(b)):
        return None
    try:
        return a - b
    except OverflowError:
        return None


def _mul(a: Any, b: Any) -> Any:
    # Numbers only: "x" * 10**9 would be an unbounded allocation.
    if not (_num(a) and _num(b)):
        return None
    try:
        return a * b
    except OverflowError:
        return None


def _div(a: Any, b: Any) -> Any:
    if not (_num(a) and _num(b)) or b == 0:
        return None
    try:
        return a / b
    except OverflowError:
        return None


def _floordiv(a: Any, b: Any) -> Any:
    if not (_num(a) and _num(b)) or b == 0:
        return None
    try:
        return a // b
    except OverflowError:
        return None


def _mod(a: Any, b: Any) -> Any:
    if not (_num(a) and _num(b)) or b == 0:
        return None
    try:
        return a % b
    except OverflowError:
        return None


def _neg(a: Any) -> Any:
    return -a if _num(a) else None


def _pos(a: Any) -> Any:
    return a if _num(a) else None


def _in_text(needle: Any, hay: Any) -> bool:
    return isinstance(needle, str) and isinstance(hay, str) and needle in hay


def _eq(a: Any, b: Any) -> bool:
    # true/false are not numbers: Python says True == 1, the rule language does not.
    return bool(a == b) and (a.__class__ is bool) == (b.__class__ is bool)


def _ne(a: Any, b: Any) -> bool:
    # A missing value compares false, `!=` included.
    return a is not None and b is not None and not _eq(a, b)


def _in_tagged(x: Any, tagged: frozenset[tuple[bool, Any]]) -> bool:
    # List literals holding numbers or booleans are stored as (is_bool, value) pairs, so a
    # loosely typed value `true` is not found in [1, 2] (hash(True) == hash(1) otherwise).
    try:
        return (x.__class__ is bool, x) in tagged
    except TypeError:
        return False


RUNTIME: dict[str, Any] = {
    "_lt": _lt, "_le": _le, "_gt": _gt, "_ge": _ge,
    "_add": _add, "_sub": _sub, "_mul": _mul, "_div": _div, "_floordiv": _floordiv,
    "_mod": _mod, "_neg": _neg, "_pos": _pos, "_in_text": _in_text, "_eq": _eq, "_ne": _ne,
    "_in_tagged": _in_tagged,
}
