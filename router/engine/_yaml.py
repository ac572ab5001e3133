"""YAML loading that remembers where every value came from.

Rule errors must name a line and column, so the documents are read with ruamel.yaml's round-trip
loader (which records node positions) and turned into plain Python values plus a map from each
value's path to its position. Everything after this module works on plain data.
"""

from __future__ import annotations

import datetime
from typing import Any

import msgspec
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

from router.engine.errors import RuleError, RulesetError, explain_validation

__all__ = ["Document", "Path", "load_yaml"]

Path = tuple[str | int, ...]


class Document:
    """A parsed YAML file: its plain data and the 1-based position of every path in it."""

    __slots__ = ("data", "file", "positions")

    def __init__(self, file: str, data: Any, positions: dict[Path, tuple[int, int]]) -> None:
        self.file = file
        self.data = data
        self.positions = positions

    def where(self, path: Path) -> tuple[int | None, int | None]:
        """Line and column of ``path``, or of its nearest ancestor that has one."""
        p = tuple(path)
        while True:
            pos = self.positions.get(p)
            if pos is not None:
                return pos
            if not p:
                return None, None
            p = p[:-1]

    def error(
        self, path: Path, message: str, *, fix: str | None = None, rule: str | None = None
    ) -> RuleError:
        line, col = self.where(path)
        return RuleError(file=self.file, line=line, column=col, rule=rule, message=message, fix=fix)

    def decode(self, path: Path, value: Any, tp: type[Any], errors: list[RuleError], *,
               rule: str | None = None) -> Any:
        """``value`` (found at ``path``) converted to ``tp``; None, with the error explained
        and appended to ``errors``, when it does not fit."""
        try:
            return msgspec.convert(value, tp, strict=True)
        except msgspec.ValidationError as exc:
            msg, fix, sub = explain_validation(exc, tp)
            errors.append(self.error((*path, *sub), msg, fix=fix, rule=rule))
            return None


def _plain(node: Any, path: Path, positions: dict[Path, tuple[int, int]]) -> Any:
    # ruamel's ScalarFloat/ScalarInt/... subclasses carry formatting; rules only need values.
    if isinstance(node, CommentedMap):
        out: dict[Any, Any] = {}
        for key, value in node.items():
            k: str | int = key if type(key) is int else str(key)
            child = (*path, k)
            try:
                # A block mapping or list starts on the line after its key: point at the key.
                block = isinstance(value, CommentedMap | CommentedSeq) and not (
                    value.fa.flow_style())
                line, col = node.lc.key(key) if block else node.lc.value(key)
            except (KeyError, TypeError):
                line, col = node.lc.line, node.lc.col
            if isinstance(value, LiteralScalarString | FoldedScalarString):
                line += 1  # a block scalar's text starts on the line after its `|` or `>`
            positions[child] = (line + 1, col + 1)
            out[k] = _plain(value, child, positions)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, value in enumerate(node):
            child = (*path, i)
            try:
                line, col = node.lc.item(i)
            except (KeyError, TypeError, IndexError):
                line, col = node.lc.line, node.lc.col
            positions[child] = (line + 1, col + 1)
            items.append(_plain(value, child, positions))
        return items
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, datetime.datetime | datetime.date):
        return node
    return node


def load_yaml(file: str, text: str) -> Document:
    """Parse ``text``; raises :class:`RulesetError` for syntax errors and duplicate keys."""
    yaml = YAML(typ="rt")
    try:
        root = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        fix = "check indentation and quoting around this line"
        if "duplicate key" in str(problem):
            fix = "remove or rename one of the two keys"
        err = RuleError(
            file=file,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
            message=f"YAML syntax error: {problem}",
            fix=fix,
        )
        raise RulesetError([err]) from None
    except Exception as exc:  # ruamel raises a few unmarked errors (e.g. bad tags)
        err = RuleError(file=file, message=f"YAML error: {exc}", fix="fix the YAML syntax")
        raise RulesetError([err]) from None
    positions: dict[Path, tuple[int, int]] = {(): (1, 1)}
    return Document(file, _plain(root, (), positions), positions)
