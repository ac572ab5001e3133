"""The proposed scoring file of ``leadrouter rules tune``: the same text with only the numbers
after ``points:`` changed — comments, quoting, folding and order kept byte for byte.

ruamel.yaml's round-trip loader finds each rule (a mapping with an ``id`` the proposal
changes) and the line and column of its ``points`` value; that one token is replaced in the
original text. Dumping the round-trip tree again would re-wrap long expressions and re-quote
strings; editing the located token cannot."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from ruamel.yaml import YAML

__all__ = ["format_points", "rewrite_points"]

_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


def format_points(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _maps(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _maps(value)
    elif isinstance(node, list):
        for value in node:
            yield from _maps(value)


def rewrite_points(text: str, proposed: Mapping[str, float]) -> tuple[str, list[str]]:
    """``text`` with the ``points:`` of each rule id in ``proposed`` set; and the ids
    rewritten. Raises ValueError when a value is not a plain number where it should be."""
    root = YAML(typ="rt").load(text)
    lines = text.splitlines(keepends=True)
    done = []
    for node in _maps(root):
        rule = node.get("id")
        if not isinstance(rule, str) or rule not in proposed or "points" not in node:
            continue
        line, col = node.lc.value("points")
        found = _NUMBER.match(lines[line], col)
        if found is None:
            raise ValueError(f"{rule}: `points:` on line {line + 1} is not a plain number")
        new = format_points(proposed[rule])
        lines[line] = lines[line][:col] + new + lines[line][found.end():]
        done.append(rule)
    return "".join(lines), done
