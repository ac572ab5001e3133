"""Boolean conditions for the durable-rules backend, and their durable-rules JSON form.

A rule's ``when`` is translated (see :mod:`leadrouter_durable._translate`) into a small tree of
these nodes over *fact keys*: one key per value and kind ("slot"), present in the fact only when
the value has that kind. Every leaf is a test durable-rules runs itself (``$eq``, ``$lt``,
``$ex``, ...); :func:`negate` pushes ``not`` down to the leaves (durable-rules has no negation
inside one fact's condition) and :func:`simplify` keeps the trees inside durable-rules' limits
(31 expression slots per rule).

A leaf is false when its key is absent from the fact (durable-rules only visits the properties a
fact has), so negating ``key == v`` gives ``key absent or key != v``. :func:`holds` evaluates a
tree in Python with exactly the meaning it is meant to have in durable-rules; the tests use it
to tell a translation mistake from a durable-rules quirk.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FALSE",
    "TRUE",
    "And",
    "Cmp",
    "Const",
    "Ex",
    "Nex",
    "Node",
    "Or",
    "Test",
    "all_of",
    "any_of",
    "dumps",
    "emit",
    "expression_slots",
    "holds",
    "negate",
    "render_number",
    "simplify",
]

Literal = int | float | str

_NEGATED = {"eq": "neq", "neq": "eq", "lt": "gte", "gte": "lt", "lte": "gt", "gt": "lte"}
_DURABLE_OP = {"neq": "$neq", "lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}


@dataclass(frozen=True, slots=True)
class Const:
    value: bool


@dataclass(frozen=True, slots=True)
class Test:
    """``key <op> value``; false when ``key`` is absent."""

    op: str
    key: str
    value: Literal


@dataclass(frozen=True, slots=True)
class Cmp:
    """``left <op> right`` between two fact keys; false when either is absent."""

    op: str
    left: str
    right: str


@dataclass(frozen=True, slots=True)
class Ex:
    key: str


@dataclass(frozen=True, slots=True)
class Nex:
    key: str


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


Node = Const | Test | Cmp | Ex | Nex | And | Or

TRUE = Const(True)
FALSE = Const(False)


def all_of(*items: Node) -> Node:
    return simplify(And(tuple(items)))


def any_of(*items: Node) -> Node:
    return simplify(Or(tuple(items)))


def negate(node: Node) -> Node:
    """``not node`` with the negation pushed to the leaves (negation normal form)."""
    if isinstance(node, Const):
        return Const(not node.value)
    if isinstance(node, Test):
        return any_of(Nex(node.key), Test(_NEGATED[node.op], node.key, node.value))
    if isinstance(node, Cmp):
        return any_of(Nex(node.left), Nex(node.right), Cmp(_NEGATED[node.op], node.left,
                                                            node.right))
    if isinstance(node, Ex):
        return Nex(node.key)
    if isinstance(node, Nex):
        return Ex(node.key)
    if isinstance(node, And):
        return any_of(*(negate(i) for i in node.items))
    return all_of(*(negate(i) for i in node.items))


def _keys(node: Node) -> set[str]:
    if isinstance(node, Test | Ex | Nex):
        return {node.key}
    if isinstance(node, Cmp):
        return {node.left, node.right}
    if isinstance(node, And | Or):
        out: set[str] = set()
        for i in node.items:
            out |= _keys(i)
        return out
    return set()


def simplify(node: Node) -> Node:
    """Flatten, drop constants and duplicates, and factor shared ``absent`` tests out of ``and``.

    Works on the top level only: the items are expected to be simplified already (they are,
    when trees are built with :func:`all_of`, :func:`any_of` and :func:`negate`).

    The factoring turns the negation of ``x in [a, b, c]`` — ``(x absent or x != a) and (x absent
    or x != b) and ...`` — into ``x absent or (x != a and x != b and ...)``: same meaning, a
    third of the durable-rules expression slots.
    """
    if not isinstance(node, And | Or):
        return node
    is_and = isinstance(node, And)
    items: list[Node] = []
    for item in node.items:  # already simplified: every node is built through all_of/any_of
        if isinstance(item, Const):
            if item.value != is_and:  # false in an and / true in an or decides it
                return item
            continue
        for sub in item.items if isinstance(item, And if is_and else Or) else (item,):
            if sub not in items:
                items.append(sub)
    if is_and:
        items = _factor_absent(items)
        absent = {i.key for i in items if isinstance(i, Nex)}
        if absent & {i.key for i in items if isinstance(i, Ex)}:
            return FALSE
        for i in items:
            if isinstance(i, Test | Cmp) and absent & _keys(i):
                return FALSE
        # `x absent and (x absent or ...)` is `x absent`
        items = [i for i in items if not (isinstance(i, Or) and any(
            isinstance(j, Nex) and j.key in absent for j in i.items))]
    if not items:
        return Const(is_and)
    if len(items) == 1:
        return items[0]
    return And(tuple(items)) if is_and else Or(tuple(items))


def _factor_absent(items: list[Node]) -> list[Node]:
    while True:
        groups: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            if isinstance(item, Or):
                for key in {sub.key for sub in item.items if isinstance(sub, Nex)}:
                    groups.setdefault(key, []).append(index)
        shared = [k for k, idx in groups.items() if len(idx) > 1]
        if not shared:
            return items
        key = shared[0]
        chosen = groups[key]
        rests: list[Node] = []
        for index in chosen:
            item = items[index]
            assert isinstance(item, Or)
            rests.append(simplify(Or(tuple(s for s in item.items if s != Nex(key)))))
        factored = simplify(Or((Nex(key), simplify(And(tuple(rests))))))
        items = [factored if i == chosen[0] else item for i, item in enumerate(items)
                 if i not in chosen[1:]]


def holds(node: Node, fact: Mapping[str, Any]) -> bool:
    """What ``node`` means over a fact (key → number or text): the durable-rules contract."""
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Ex):
        return node.key in fact
    if isinstance(node, Nex):
        return node.key not in fact
    if isinstance(node, Test):
        return node.key in fact and _compare(node.op, fact[node.key], node.value)
    if isinstance(node, Cmp):
        return (node.left in fact and node.right in fact
                and _compare(node.op, fact[node.left], fact[node.right]))
    if isinstance(node, And):
        return all(holds(i, fact) for i in node.items)
    return any(holds(i, fact) for i in node.items)


def _compare(op: str, a: Any, b: Any) -> bool:
    if isinstance(a, str) != isinstance(b, str):
        return False
    return bool({"eq": a == b, "neq": a != b, "lt": a < b, "lte": a <= b, "gt": a > b,
                 "gte": a >= b}[op])


def _cmp_guarded(parent: Node | None, node: Cmp) -> bool:
    """Does ``node`` need its own ``$and`` with an ``$ex`` guard on its right-hand key?

    Not inside an ``and`` (the guard joins it) nor inside an ``or`` that also holds
    "right-hand key absent" (then the ``or`` is true without the comparison anyway).
    """
    if isinstance(parent, And):
        return False
    return not (isinstance(parent, Or) and Nex(node.right) in parent.items)


def expression_slots(node: Node, parent: Node | None = None) -> int:
    """durable-rules' count of a rule's expression-sequence entries (it allows 31).

    Each ``$and`` / ``$or`` takes two (an opening and an ``END`` marker); tests, including
    comparisons between two fact properties, take none (measured on durable-rules 2.0.28).
    """
    if isinstance(node, And | Or):
        return 2 + sum(expression_slots(i, node) for i in node.items)
    if isinstance(node, Cmp):
        return 2 if _cmp_guarded(parent, node) else 0
    return 0


def render_number(value: float | int) -> str:
    """A number as durable-rules' JSON parser reads it.

    Its parser accepts an exponent only after a fraction (``1e+16`` is read as ``1`` followed by
    garbage, so the whole fact or ruleset is rejected): write ``1.0e+16``. Infinity is written as
    an overflowing literal, which C's ``atof`` turns into ``HUGE_VAL``. Integers outside int64
    (``atoll`` would clamp them) are written as floats.
    """
    if isinstance(value, int):
        if -(2**63) <= value < 2**63:
            return str(value)
        try:
            value = float(value)
        except OverflowError:
            return "1.0e999" if value > 0 else "-1.0e999"
    if math.isinf(value):
        return "1.0e999" if value > 0 else "-1.0e999"
    text = repr(value)
    if "e" in text and "." not in text:
        text = text.replace("e", ".0e")
    return text


class _Raw:
    """A pre-rendered JSON fragment inside an emitted condition."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _literal(value: Literal) -> _Raw | str:
    if isinstance(value, str):
        return value
    return _Raw(render_number(value))


def emit(node: Node, always: str, parent: Node | None = None) -> Any:
    """The durable-rules condition (a JSON-able tree) for ``node``.

    ``always`` names a fact key every fact carries (value 1): a rule that always matches tests
    it. A ``Cmp`` gets an explicit ``$ex`` guard on its right-hand key (see
    :func:`_cmp_guarded`): durable-rules treats a missing right-hand property of a
    ``{"$m": ...}`` comparison as a match.
    """
    if isinstance(node, Const):
        if not node.value:
            raise ValueError("a rule that never matches has no durable-rules condition")
        return {always: _Raw("1")}
    if isinstance(node, Test):
        if node.op == "eq":
            return {node.key: _literal(node.value)}
        return {_DURABLE_OP[node.op]: {node.key: _literal(node.value)}}
    if isinstance(node, Ex):
        return {"$ex": {node.key: _Raw("1")}}
    if isinstance(node, Nex):
        return {"$nex": {node.key: _Raw("1")}}
    if isinstance(node, Cmp):
        ref = {"$m": node.right}
        test = {node.left: ref} if node.op == "eq" else {_DURABLE_OP[node.op]: {node.left: ref}}
        if _cmp_guarded(parent, node):
            return {"$and": [{"$ex": {node.right: _Raw("1")}}, test]}
        return test
    items: list[Any] = []
    for item in node.items:
        if isinstance(node, And) and isinstance(item, Cmp) and Ex(item.right) not in node.items:
            items.append({"$ex": {item.right: _Raw("1")}})
        items.append(emit(item, always, node))
    return {"$and" if isinstance(node, And) else "$or": items}


def dumps(tree: Any) -> str:
    """JSON text of an emitted tree (numbers rendered for durable-rules' parser)."""
    if isinstance(tree, _Raw):
        return tree.text
    if isinstance(tree, str):
        return json.dumps(tree)
    if isinstance(tree, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dumps(v)}" for k, v in tree.items()) + "}"
    if isinstance(tree, list | tuple):
        return "[" + ",".join(dumps(v) for v in tree) + "]"
    if isinstance(tree, bool):
        return "1" if tree else "0"
    if isinstance(tree, int | float):
        return render_number(tree)
    raise TypeError(f"cannot render {type(tree).__name__}")
