"""Errors found while loading a rules directory.

A rule error always says *where* (file, line, column, rule id), *what* is wrong and *how to fix
it*, because the person reading it is an ops engineer editing YAML, not the author of this code.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Iterable
from typing import Any

import msgspec

__all__ = ["RuleError", "RulesetError", "explain_validation"]

_ERR = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_PATH = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\[\"?([^\]\"]*)\"?\]")


class RuleError(msgspec.Struct, frozen=True, kw_only=True):
    """One problem in one place of a rule file."""

    file: str
    line: int | None = None
    column: int | None = None
    rule: str | None = None
    message: str
    fix: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        text = f"{where}: "
        if self.rule:
            text += f"{self.rule}: "
        text += self.message
        if self.fix:
            text += f" — {self.fix}"
        return text


class RulesetError(Exception):
    """A rules directory did not load; carries every problem found, not just the first."""

    def __init__(self, errors: Iterable[RuleError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.file, e.line or 0, e.column or 0))
        super().__init__(self.summary())

    def summary(self) -> str:
        n = len(self.errors)
        head = f"{n} error{'s' if n != 1 else ''} in rules"
        return head + ":\n" + "\n".join(f"  {e}" for e in self.errors)


def _path(text: str | None) -> tuple[str | int, ...]:
    out: list[str | int] = []
    for name, index, key in _PATH.findall(text or ""):
        out.append(int(index) if index else (name or key))
    return tuple(out)


def _fields_of(tp: Any) -> list[str]:
    return list(getattr(tp, "__struct_fields__", ()))


def _literals(tp: Any, field: str) -> list[str]:
    hints = typing.get_type_hints(tp)
    found: list[str] = []
    for arg in typing.get_args(hints.get(field)) or ():
        found.extend(str(v) for v in typing.get_args(arg) if isinstance(v, str))
        if isinstance(arg, str):
            found.append(arg)
    return found


def explain_validation(exc: msgspec.ValidationError,
                       tp: Any) -> tuple[str, str, tuple[str | int, ...]]:
    """What msgspec refused when converting a YAML value to ``tp``, for a person editing YAML.

    Returns the message, the fix (a close key or value when there is one) and the path inside
    the value where it went wrong. Every section decoded from rule files (the engine's own and
    the intake sections compiled beside them) reports its errors through this one function, so
    they all read the same.
    """
    m = _ERR.match(str(exc))
    msg = m.group("msg") if m else str(exc)
    path = _path(m.group("path") if m else None)
    unknown = re.search(r"unknown field `([^`]*)`", msg)
    missing = re.search(r"missing required field `([^`]*)`", msg)
    if unknown:
        options = _fields_of(tp)
        close = difflib.get_close_matches(unknown.group(1), options, n=1, cutoff=0.6)
        fix = (f"did you mean `{close[0]}`?" if close else
               f"allowed keys: {', '.join(options)}")
        return f"unknown key `{unknown.group(1)}`", fix, path
    if missing:
        return f"missing `{missing.group(1)}`", f"add `{missing.group(1)}: ...`", path
    enum = re.search(r"Invalid enum value '([^']*)'", msg)
    if enum and path and isinstance(path[-1], str):
        allowed = _literals(tp, path[-1])
        close = difflib.get_close_matches(enum.group(1), allowed, n=1, cutoff=0.5)
        fix = f"did you mean `{close[0]}`?" if close else f"use one of: {', '.join(allowed)}"
        return f"`{enum.group(1)}` is not a valid {path[-1]}", fix, path
    return msg, "fix the value's type or format (see docs/rules.md)", path
