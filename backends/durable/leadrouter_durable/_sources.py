"""The values a stage's rules read: sources, the operands that refer to them, and how names,
``attributes.x``, literals and ``hit()`` / ``count()`` / ``last()`` resolve to them.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from leadrouter_durable._fact import (
    ALL_SLOTS,
    ATTRIBUTE_SLOTS,
    KIND_SLOTS,
    RESERVED,
    Unsupported,
    fnv1_32,
)
from leadrouter_durable._semantics import _PY_ORDER, _is_num
from router.engine.functions import ANY, TIME, Function
from router.engine.names import DERIVED, LEAD_FIELDS, STAGE_OUTPUTS

Getter = Callable[[dict[str, Any]], Any]


@dataclass(eq=False)
class Source:
    """One value the stage's rules read, and the fact keys it is written under."""

    label: str
    get: Getter
    slots: tuple[str, ...]
    computed: bool
    keys: dict[str, str] = field(default_factory=dict)
    rules: set[int] = field(default_factory=set)


class _Lit:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Val:
    __slots__ = ("source",)

    def __init__(self, source: Source) -> None:
        self.source = source

    def key(self, slot: str) -> str:
        return self.source.keys[slot]

    @property
    def slots(self) -> tuple[str, ...]:
        return self.source.slots


Operand = _Lit | _Val
_LIST: Any = _Lit(None)  # marks "the previous comparator was a list" in a chain


def _kind_of(name: str) -> str:
    if name in LEAD_FIELDS:
        return LEAD_FIELDS[name]
    if name in DERIVED:
        return DERIVED[name][0]
    if name in STAGE_OUTPUTS:
        return STAGE_OUTPUTS[name][0]
    return ANY


class _Sources:
    """The sources of one stage's rules and the fact keys they are written under; the base of
    :class:`leadrouter_durable._translate.StageTranslator`."""

    def __init__(self, stage: str, functions: Mapping[str, Function],
                 ranks: Mapping[str, Mapping[str, float]] | None = None) -> None:
        self.stage = stage
        self.functions = functions
        # names whose values order by rank, not as text: status (bad_lead < nurture < mql <
        # sql) and grade (by threshold); see router/engine/expr.py
        self.ranks: Mapping[str, Mapping[str, float]] = ranks or {}
        self.sources: dict[str, Source] = {}
        self.hashes: set[int] = {fnv1_32(k) for k in RESERVED}
        self.counter = 0
        self.rule_index = -1
        self.computed: list[str] = []

    # -- sources -------------------------------------------------------------------------------
    def source(self, ident: str, label: str, get: Getter, slots: tuple[str, ...],
               computed: bool = False) -> Source:
        src = self.sources.get(ident)
        if src is None:
            while True:
                base = f"v{self.counter}"
                self.counter += 1
                hashes = {fnv1_32(base + s) for s in ALL_SLOTS}
                if len(hashes) == len(ALL_SLOTS) and not hashes & self.hashes:
                    break
            self.hashes |= hashes
            src = Source(label=label, get=get, slots=slots, computed=computed,
                         keys={s: base + s for s in slots})
            self.sources[ident] = src
        if self.rule_index >= 0:
            src.rules.add(self.rule_index)
            if computed and label not in self.computed:
                self.computed.append(label)
        return src

    def name(self, name: str) -> _Val:
        def get(env: dict[str, Any]) -> Any:
            return env.get(name)

        return _Val(self.source("name:" + name, name, get, KIND_SLOTS[_kind_of(name)]))

    def _attribute(self, key: str) -> _Val:
        def get(env: dict[str, Any]) -> Any:
            return env["attributes"].get(key)

        return _Val(self.source("attr:" + key, f"attributes.{key}", get, ATTRIBUTE_SLOTS))

    # -- names that order by rank, list literals -----------------------------------------------
    def _ranked(self, op: str, field: ast.expr, other: Operand) -> list[str] | None:
        """``status >= "mql"``: the values of a ranked name that pass (status by its order,
        grade by its threshold), or None when this is not such a comparison."""
        if not (isinstance(field, ast.Name) and field.id in self.ranks
                and isinstance(other, _Lit) and isinstance(other.value, str)):
            return None
        ranks = self.ranks[field.id]
        pivot = ranks.get(other.value)
        if pivot is None:
            raise Unsupported(f'"{other.value}" is not a known {field.id}')
        return [v for v, r in ranks.items() if _PY_ORDER[op](r, pivot)]

    def _literal(self, node: ast.expr) -> Any:
        value = _literal_value(node)
        if value is _NOT_LITERAL:
            raise Unsupported("lists may only hold literals")
        return value


_CONSTANTS = {"true": True, "false": False, "null": None, "True": True, "False": False,
              "None": None}
_NOT_LITERAL: Any = object()


def _literal_value(node: ast.expr) -> Any:
    """The value of a literal (``3``, ``"a"``, ``null``, ``-2.5``), else ``_NOT_LITERAL``."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        v = _literal_value(node.operand)  # the compiler folds signed number literals
        if v is not _NOT_LITERAL and _is_num(v):
            return -v if isinstance(node.op, ast.USub) else v
    return _NOT_LITERAL


def _attribute_key(node: ast.expr) -> str | None:
    if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == "attributes"):
        return node.attr
    if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
            and node.value.id == "attributes" and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)):
        return node.slice.value
    return None


def _operand_literal(node: ast.expr) -> Operand:
    value = _literal_value(node)
    return _Lit(value) if value is not _NOT_LITERAL else _LIST


def _is_null(o: Operand) -> bool:
    return isinstance(o, _Lit) and o is not _LIST and o.value is None


def _getter(o: Operand) -> Getter:
    if isinstance(o, _Lit):
        v = o.value
        return lambda env: v
    return o.source.get


def _label(o: Operand) -> str:
    return repr(o.value) if isinstance(o, _Lit) else o.source.label


def _special_getter(node: ast.Call) -> tuple[str, str, Getter, tuple[str, ...]] | None:
    """hit() / count() / last(): values read from the stage outputs and the state snapshot."""
    assert isinstance(node.func, ast.Name)
    name = node.func.id
    arg = _literal_value(node.args[0]) if node.args else None
    if not isinstance(arg, str):
        return None
    if name == "hit":
        def get_hit(env: dict[str, Any]) -> Any:
            return arg in env["_hits"]

        return f"hit:{arg}", f'hit("{arg}")', get_hit, ("b",)
    if name == "count":
        window = (arg, _literal_value(node.keywords[0].value))

        def get_count(env: dict[str, Any]) -> Any:
            return env["_counts"].get(window, 0)

        return f"count:{window}", f'count("{arg}", days={window[1]})', get_count, ("n",)
    if name == "last":
        def get_last(env: dict[str, Any]) -> Any:
            return env["_last"].get(arg)

        return f"last:{arg}", f'last("{arg}")', get_last, KIND_SLOTS[TIME]
    return None
