"""Errors found while loading a rules directory.

A rule error always says *where* (file, line, column, rule id), *what* is wrong and *how to fix
it*, because the person reading it is an ops engineer editing YAML, not the author of this code.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

__all__ = ["RuleError", "RulesetError"]


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
