"""Translate one stage of a compiled ruleset into a durable-rules ruleset.

Works from each rule's original ``when`` source (already checked by the loader), not from the
compiled Python, so the durable-rules backend is an independent second implementation of the
language and can serve as an oracle for the compiler.

How a lead becomes a durable-rules fact
---------------------------------------
Every value a stage's rules read (a field, ``attributes.x``, ``count(...)``, ``hit(...)``, a
function call, an arithmetic sub-expression) is a :class:`Source`. Its value goes into the fact
under one key per *kind* ("slot"): ``n`` number, ``b`` boolean (as 0/1), ``s`` text, ``t`` aware
datetime and ``u`` naive datetime (microseconds since the epoch), ``x`` NaN. A null value puts
no key in the fact at all. Keeping kinds apart is what makes durable-rules compare like the rule
language: durable-rules itself compares a text with a number by printing the number and running
``strncmp`` (``"X" > 1`` is true there), and treats ``true`` as ``1``.

What runs in durable-rules and what is computed first
-----------------------------------------------------
Every comparison (``== != < <= > >=``), list membership (``in [..]``), presence test (``== null``),
truthiness and the ``and`` / ``or`` / ``not`` structure become durable-rules conditions. Values
that durable-rules cannot compute are computed in Python before the fact is asserted, and only
their *comparison* runs in durable-rules: function calls (``matches`` uses RE2, durable-rules
has its own regex dialect), arithmetic (null-safe here, C integer division there), ``"x" in
text``, and any comparison or boolean operator used as a value rather than as a condition.

Text ordering (``title < "m"``) is computed first as well: durable-rules orders text with
``strncmp`` over the raw JSON, reading past the end of the shorter value (``"US" < "US!"`` is
false there). ``status`` and ``grade`` order by rank, as in the compiler, which durable-rules
runs as membership (``status >= "mql"`` is ``status`` in ``["mql", "sql"]``).

Refused (:class:`Unsupported`), with the reason, at load: functions without a Python
implementation, and conditions too large for durable-rules' limits (31 expression slots per
rule after splitting, 252 values per stage).

Known limit: numbers are compared as durable-rules compares them, an integer against a double
after converting the integer; integers in the fact are exact and doubles that hold integers
beyond 2**53 are written as integers, which leaves only +/-2**63 itself rounded.
"""

from __future__ import annotations

import ast
import datetime
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _json_text
from typing import Any

from router.engine import _durable_ir as ir
from router.engine.functions import ANY, BOOL, BUILTINS, NUM, STR, TIME, Function, Matcher
from router.engine.names import DERIVED, LEAD_FIELDS, STAGE_OUTPUTS

__all__ = ["ALWAYS", "MAX_SLOTS", "Source", "StagePlan", "StageTranslator", "Unsupported",
           "encode", "fnv1_32", "split_condition"]

# durable-rules' own limits (rete.h / state.h / events.c of durable-rules 2.0.28).
MAX_SLOTS = 31  # MAX_SEQUENCE_EXPRESSIONS - 1
MAX_FACT_PROPERTIES = 255
ALWAYS = "k"  # every fact carries "k": 1; an always-true rule tests it
FIXED_PROPERTIES = ("sid", "id", ALWAYS)  # in every fact
RESERVED = (*FIXED_PROPERTIES, "$s")  # no value may hash like these

# The rule language's equality: true/false never equal numbers (Python says True == 1). Kept as
# a switch because it is the one place where the language departs from Python's `==`.
BOOL_EQUALS_NUMBER = False

ALL_SLOTS = ("n", "b", "s", "t", "u", "x")
KIND_SLOTS: dict[str, tuple[str, ...]] = {
    NUM: ("n",), BOOL: ("b",), STR: ("s",), TIME: ("t", "u"), ANY: ALL_SLOTS,
}
ATTRIBUTE_SLOTS = ("n", "b", "s")  # attribute values are text, numbers, booleans or null
_CONSTANTS = {"true": True, "false": False, "null": None, "True": True, "False": False,
              "None": None}
_ORDER = {ast.Lt: "lt", ast.LtE: "lte", ast.Gt: "gt", ast.GtE: "gte"}
_FLIP = {"lt": "gt", "gt": "lt", "lte": "gte", "gte": "lte", "eq": "eq", "neq": "neq"}
_PY_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge}
_ARITH: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
_EPOCH_AWARE = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_EPOCH_NAIVE = datetime.datetime(1970, 1, 1)


class Unsupported(Exception):
    """A rule uses something the durable-rules backend cannot run faithfully."""


def fnv1_32(text: str) -> int:
    """durable-rules' property-name hash (FNV-1a, 32 bit): properties are matched by it alone."""
    h = 0x811C9DC5
    for byte in text.encode():
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


# -- value semantics of the rule language (independent of router.engine._runtime) -------------

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


def encode(value: Any) -> tuple[str, str] | None:
    """(slot, JSON text) of a value as it goes into a fact; None for null."""
    cls = value.__class__
    if cls is str:
        return "s", _json_text(value)
    if cls is float:
        if math.isnan(value):
            return "x", "1"
        if _EXACT <= abs(value) < _INT64_END:
            # integral beyond 2**53: written as the integer it is, so that durable-rules
            # compares it exactly with integers (it converts an integer to a double otherwise)
            return "n", str(int(value))
        return "n", ir.render_number(value)
    if cls is int:
        return "n", str(value) if _INT64_MIN <= value <= _INT64_MAX else ir.render_number(value)
    if cls is bool:
        return "b", "1" if value else "0"
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            return "t", str((value - _EPOCH_AWARE) // _MICROSECOND)
        return "u", str((value.replace(tzinfo=None) - _EPOCH_NAIVE) // _MICROSECOND)
    if isinstance(value, bool | int | float | str):  # subclasses
        return encode(bool(value) if isinstance(value, bool) else
                      int(value) if isinstance(value, int) else
                      float(value) if isinstance(value, float) else str(value))
    raise TypeError(f"a {type(value).__name__} value cannot go into a durable-rules fact")


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_EXACT, _INT64_END = 2.0**53, 2.0**63
_MICROSECOND = datetime.timedelta(microseconds=1)


# -- sources and plans -------------------------------------------------------------------------

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


@dataclass
class RulePlan:
    index: int
    rule_id: str
    node: ir.Node
    conditions: list[ir.Node]
    computed: list[str]


@dataclass
class StagePlan:
    """A stage as durable-rules runs it: the ruleset definition and how to build its fact."""

    name: str
    sources: list[Source]
    rules: list[RulePlan]
    definition: str  # durable-rules ruleset JSON
    actions: dict[str, int]  # durable-rules rule name -> index of the rule in its stage


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


class StageTranslator:
    """Collects the sources and durable-rules conditions of one stage's rules."""

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

    # -- rules ---------------------------------------------------------------------------------
    def rule(self, index: int, source: str) -> tuple[ir.Node, list[str]]:
        """The condition of rule ``index`` and the labels of values it has computed first."""
        self.rule_index, self.computed = index, []
        try:
            tree = ast.parse(source.strip(), mode="eval")
            return self.cond(tree.body), self.computed
        finally:
            self.rule_index = -1

    def plan(self, rules: list[tuple[str, ir.Node, list[str]]]) -> StagePlan:
        """Turn the stage's conditions into a durable-rules ruleset definition."""
        room = MAX_FACT_PROPERTIES - len(FIXED_PROPERTIES)
        if len(self.sources) > room:  # a value takes one property (in one slot) at most
            raise Unsupported(f"the {self.stage} rules read {len(self.sources)} different "
                              f"values; a durable-rules fact holds at most {room}")
        plans: list[RulePlan] = []
        definition: dict[str, Any] = {}
        actions: dict[str, int] = {}
        for index, (rule_id, node, computed) in enumerate(rules):
            parts = split_condition(node)
            for n, part in enumerate(parts):
                name = f"r{index}" if len(parts) == 1 else f"r{index}_{n}"
                definition[name] = {"all": [{"m": ir.emit(part, ALWAYS)}]}
                actions[name] = index
            plans.append(RulePlan(index=index, rule_id=rule_id, node=node, conditions=parts,
                                  computed=computed))
        return StagePlan(name=self.stage, sources=list(self.sources.values()), rules=plans,
                         definition=ir.dumps(definition), actions=actions)

    # -- conditions (truthiness context) -------------------------------------------------------
    def cond(self, node: ast.expr) -> ir.Node:
        if isinstance(node, ast.BoolOp):
            items = [self.cond(v) for v in node.values]
            return ir.all_of(*items) if isinstance(node.op, ast.And) else ir.any_of(*items)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return ir.negate(self.cond(node.operand))
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.IfExp):
            test = self.cond(node.test)
            return ir.any_of(ir.all_of(test, self.cond(node.body)),
                             ir.all_of(ir.negate(test), self.cond(node.orelse)))
        return self.truthy(self.operand(node))

    def truthy(self, value: Operand) -> ir.Node:
        if isinstance(value, _Lit):
            return ir.Const(_truthy(value.value))
        tests: list[ir.Node] = []
        for slot in value.slots:
            key = value.key(slot)
            if slot in ("n", "b"):
                tests.append(ir.Test("neq", key, 0))
            elif slot == "s":
                tests.append(ir.Test("neq", key, ""))
            else:  # datetimes and NaN are always truthy
                tests.append(ir.Ex(key))
        return ir.any_of(*tests)

    def compare(self, node: ast.Compare) -> ir.Node:
        """A comparison chain. A missing value compares false with every operator, ``!=`` and
        ``not in`` included; only ``== null`` / ``!= null`` test presence."""
        parts: list[ir.Node] = []
        left_node, left = node.left, self.operand(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            if left is _LIST:
                raise Unsupported("a list can only be the right side of `in`")
            if isinstance(op, ast.In | ast.NotIn):
                if isinstance(comparator, ast.List | ast.Tuple):
                    items = [self._literal(e) for e in comparator.elts]
                    found = ir.any_of(*(self.equal(left, _Lit(v)) for v in items))
                    missing = [left]
                    right: Operand = _LIST
                else:  # "part" in text: a function of two values, computed first
                    right = self.operand(comparator)
                    found = self.truthy(self._computed_pair("in", left, right))
                    missing = [left, right]
                if isinstance(op, ast.NotIn):
                    found = ir.all_of(*(self.present(m) for m in missing), ir.negate(found))
                parts.append(found)
            else:
                right = self.operand(comparator)
                parts.append(self.relate(op, left_node, left, comparator, right))
            left_node, left = comparator, right
        return ir.all_of(*parts)

    def present(self, value: Operand) -> ir.Node:
        if isinstance(value, _Lit):
            return ir.Const(value.value is not None)
        return ir.any_of(*(ir.Ex(value.key(s)) for s in value.slots))

    def relate(self, op: ast.cmpop, left_node: ast.expr, left: Operand,
               right_node: ast.expr, right: Operand) -> ir.Node:
        if isinstance(op, ast.Eq):
            return self.equal(left, right)
        if isinstance(op, ast.NotEq):
            if _is_null(left) or _is_null(right):  # `x != null`: presence
                return ir.negate(self.equal(left, right))
            return ir.all_of(self.present(left), self.present(right),
                             ir.negate(self.equal(left, right)))
        name = _ORDER.get(type(op))
        if name is None:
            raise Unsupported(f"`{type(op).__name__}` comparisons are not supported")
        keep = self._ranked(name, left_node, right)
        if keep is not None:
            return ir.any_of(*(self.equal(left, _Lit(v)) for v in keep))
        keep = self._ranked(_FLIP[name], right_node, left)
        if keep is not None:
            return ir.any_of(*(self.equal(right, _Lit(v)) for v in keep))
        return self.order(name, left, right)

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

    def equal(self, left: Operand, right: Operand) -> ir.Node:
        if isinstance(left, _Lit) and isinstance(right, _Lit):
            return ir.Const(_same(left.value, right.value))
        if isinstance(left, _Lit):
            left, right = right, left
        assert isinstance(left, _Val)
        if isinstance(right, _Lit):
            v = right.value
            if v is None:
                return ir.all_of(*(ir.Nex(left.key(s)) for s in left.slots))
            tests: list[ir.Node] = []
            if isinstance(v, str):
                if "s" in left.slots:
                    tests.append(ir.Test("eq", left.key("s"), v))
            elif isinstance(v, bool):
                if "b" in left.slots:
                    tests.append(ir.Test("eq", left.key("b"), int(v)))
                if BOOL_EQUALS_NUMBER and "n" in left.slots:
                    tests.append(ir.Test("eq", left.key("n"), int(v)))
            elif _is_num(v):
                if "n" in left.slots:
                    tests.append(ir.Test("eq", left.key("n"), v))
                if BOOL_EQUALS_NUMBER and "b" in left.slots and v in (0, 1):
                    tests.append(ir.Test("eq", left.key("b"), int(v)))
            else:
                raise Unsupported(f"cannot compare with the literal {v!r}")
            return ir.any_of(*tests)
        pairs = [(s, s) for s in left.slots if s in right.slots and s != "x"]
        if BOOL_EQUALS_NUMBER:
            pairs += [(a, b) for a, b in (("n", "b"), ("b", "n"))
                      if a in left.slots and b in right.slots]
        both_null = ir.all_of(*(ir.Nex(left.key(s)) for s in left.slots),
                              *(ir.Nex(right.key(s)) for s in right.slots))
        return ir.any_of(*(ir.Cmp("eq", left.key(a), right.key(b)) for a, b in pairs),
                         both_null)

    def order(self, op: str, left: Operand, right: Operand) -> ir.Node:
        if isinstance(left, _Lit) and isinstance(right, _Lit):
            return ir.Const(_order(op, left.value, right.value))
        if isinstance(left, _Lit):
            left, right, op = right, left, _FLIP[op]
        assert isinstance(left, _Val)
        if isinstance(right, _Lit):
            v = right.value
            if isinstance(v, str) and "s" in left.slots:
                return self._text_order(op, left, right)
            if not _is_num(v) or "n" not in left.slots:
                return ir.FALSE  # null, booleans and mismatched kinds order false
            return ir.Test(op, left.key("n"), v)
        tests: list[ir.Node] = [ir.Cmp(op, left.key(s), right.key(s)) for s in left.slots
                                if s in right.slots and s in ("n", "t", "u")]
        if "s" in left.slots and "s" in right.slots:
            tests.append(self._text_order(op, left, right))
        return ir.any_of(*tests)

    def _text_order(self, op: str, left: _Val, right: Operand) -> ir.Node:
        """Text ordering, computed first: durable-rules orders text with ``strncmp`` over the
        raw JSON, reading past the end of the shorter value (``"US" < "US!"`` is false there)."""
        a, b = left.source.get, _getter(right)

        def get(env: dict[str, Any]) -> Any:
            x, y = a(env), b(env)
            return isinstance(x, str) and isinstance(y, str) and _order(op, x, y)

        symbol = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}[op]
        label = f"{left.source.label} {symbol} {_label(right)} (text ordering)"
        src = self.source(f"order:{label}", label, get, ("b",), computed=True)
        return ir.Test("eq", src.keys["b"], 1)

    # -- operands (value context) --------------------------------------------------------------
    @staticmethod
    def literal(value: Any) -> Operand:
        return _Lit(value)

    def _literal(self, node: ast.expr) -> Any:
        value = _literal_value(node)
        if value is _NOT_LITERAL:
            raise Unsupported("lists may only hold literals")
        return value

    def operand(self, node: ast.expr) -> Operand:
        value = _literal_value(node)
        if value is not _NOT_LITERAL:
            return _Lit(value)
        if isinstance(node, ast.Name):
            return self.name(node.id)
        key = _attribute_key(node)
        if key is not None:
            return self._attribute(key)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            special = self._special(node)
            if special is not None:
                return special
        return self._computed(node)

    def _special(self, node: ast.Call) -> _Val | None:
        found = _special_getter(node)
        if found is None:
            return None
        ident, label, get, slots = found
        return _Val(self.source(ident, label, get, slots))

    def _computed(self, node: ast.expr) -> _Val:
        get = self.evaluator(node)
        label = ast.unparse(node)
        return _Val(self.source("expr:" + ast.dump(node), label, get, self._slots_of(node),
                                computed=True))

    def _slots_of(self, node: ast.expr) -> tuple[str, ...]:
        """The kinds a value can have (fewer kinds: smaller conditions, fewer refusals)."""
        value = _literal_value(node)
        if value is not _NOT_LITERAL:
            found = encode(value) if not isinstance(value, list | tuple) else None
            return (found[0],) if found else ()
        if isinstance(node, ast.Name):
            return KIND_SLOTS[_kind_of(node.id)]
        if _attribute_key(node) is not None:
            return ATTRIBUTE_SLOTS
        if isinstance(node, ast.Compare) or (isinstance(node, ast.UnaryOp)
                                             and isinstance(node.op, ast.Not)):
            return ("b",)
        if isinstance(node, ast.UnaryOp):
            return ("n", "x")
        if isinstance(node, ast.BinOp):
            texts = "s" in self._slots_of(node.left) and "s" in self._slots_of(node.right)
            return ("n", "s", "x") if isinstance(node.op, ast.Add) and texts else ("n", "x")
        if isinstance(node, ast.BoolOp | ast.IfExp):  # the value of one of the operands
            parts = node.values if isinstance(node, ast.BoolOp) else [node.body, node.orelse]
            kinds = {k for part in parts for k in self._slots_of(part)}
            return tuple(k for k in ALL_SLOTS if k in kinds) or ALL_SLOTS
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            special = _special_getter(node)
            if special is not None:
                return special[3]
            fn = self.functions.get(node.func.id)
            if fn is not None and BUILTINS.get(fn.name) is fn:  # trusted to return its kind
                return KIND_SLOTS[fn.returns]
        return ALL_SLOTS  # plugin functions may return anything

    def _computed_pair(self, what: str, needle: Operand, hay: Operand) -> _Val:
        a, b = _getter(needle), _getter(hay)

        def get(env: dict[str, Any]) -> Any:
            x, y = a(env), b(env)
            return isinstance(x, str) and isinstance(y, str) and x in y

        label = f"{_label(needle)} in {_label(hay)}"
        return _Val(self.source(f"{what}:{label}", label, get, ("b",), computed=True))

    # -- Python evaluation of values durable-rules cannot compute ------------------------------
    def evaluator(self, node: ast.expr) -> Getter:
        value = _literal_value(node)
        if value is not _NOT_LITERAL:
            return lambda env: value
        if isinstance(node, ast.Name):
            name = node.id
            return lambda env: env.get(name)
        key = _attribute_key(node)
        if key is not None:
            return lambda env: env["attributes"].get(key)
        if isinstance(node, ast.BoolOp):
            parts = [self.evaluator(v) for v in node.values]
            want = isinstance(node.op, ast.Or)

            def boolop(env: dict[str, Any]) -> Any:
                result: Any = None
                for part in parts:
                    result = part(env)
                    if _truthy(result) == want:
                        return result
                return result

            return boolop
        if isinstance(node, ast.UnaryOp):
            inner = self.evaluator(node.operand)
            if isinstance(node.op, ast.Not):
                return lambda env: not _truthy(inner(env))
            if isinstance(node.op, ast.USub):
                return lambda env: _neg(inner(env))
            if isinstance(node.op, ast.UAdd):
                return lambda env: _pos(inner(env))
            raise Unsupported(f"`{type(node.op).__name__}` is not supported")
        if isinstance(node, ast.BinOp):
            op = type(node.op)
            if op not in _ARITH:
                raise Unsupported(f"`{op.__name__}` is not supported")
            left, right = self.evaluator(node.left), self.evaluator(node.right)
            return lambda env: _arith(op, left(env), right(env))
        if isinstance(node, ast.IfExp):
            test, body, orelse = (self.evaluator(n) for n in (node.test, node.body,
                                                                node.orelse))
            return lambda env: body(env) if _truthy(test(env)) else orelse(env)
        if isinstance(node, ast.Compare):
            return self._compare_evaluator(node)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return self._call_evaluator(node)
        raise Unsupported(f"`{type(node).__name__}` is not supported")

    def _compare_evaluator(self, node: ast.Compare) -> Getter:
        """The value of a comparison used as a value (``(a > 1) == b``): same rules as
        :meth:`compare`, evaluated in Python."""
        first = self.evaluator(node.left)
        steps: list[tuple[Callable[[Any, Any], bool], Getter]] = []
        left_node = node.left
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            test: Callable[[Any, Any], bool]
            right: Getter = self.evaluator(comparator) if not isinstance(
                comparator, ast.List | ast.Tuple) else (lambda env: None)
            if isinstance(op, ast.In | ast.NotIn):
                found: Callable[[Any, Any], bool]
                needs: Callable[[Any, Any], bool]
                if isinstance(comparator, ast.List | ast.Tuple):
                    found = _in_list([self._literal(e) for e in comparator.elts])
                    needs = _needle_present
                else:
                    found, needs = _in_text, _both_present
                test = found if isinstance(op, ast.In) else _absent_or(needs, found)
            elif isinstance(op, ast.Eq):
                test = _same
            elif isinstance(op, ast.NotEq):
                if _literal_value(comparator) is None or _literal_value(left_node) is None:
                    test = _not_same
                else:
                    test = _different
            elif type(op) in _ORDER:
                name = _ORDER[type(op)]
                keep = self._ranked(name, left_node, _operand_literal(comparator))
                flipped = self._ranked(_FLIP[name], comparator, _operand_literal(left_node))
                if keep is not None:
                    test = _member_of(frozenset(keep), first=True)
                elif flipped is not None:
                    test = _member_of(frozenset(flipped), first=False)
                else:
                    def ordered(a: Any, b: Any, name: str = name) -> bool:
                        return _order(name, a, b)

                    test = ordered
            else:
                raise Unsupported(f"`{type(op).__name__}` comparisons are not supported")
            steps.append((test, right))
            left_node = comparator

        def compare(env: dict[str, Any]) -> bool:
            left = first(env)
            for test, right in steps:
                value = right(env)
                if not test(left, value):
                    return False
                left = value
            return True

        return compare

    def _call_evaluator(self, node: ast.Call) -> Getter:
        assert isinstance(node.func, ast.Name)
        name = node.func.id
        special = _special_getter(node)
        if special is not None:
            return special[2]
        fn = self.functions.get(name)
        if name == "matches":
            pattern = _literal_value(node.args[1])
            if not isinstance(pattern, str):
                raise Unsupported("matches() needs a text literal pattern")
            test = Matcher(pattern).test
            text = self.evaluator(node.args[0])
            return lambda env: test(text(env))
        if name == "days_since" and fn is not None and fn.impl is not None:
            impl = fn.impl
            when = self.evaluator(node.args[0])
            return lambda env: impl(when(env), env["now"])
        if fn is None or fn.impl is None or node.keywords:
            raise Unsupported(f"function `{name}` has no implementation the durable-rules "
                              "backend can call")
        impl = fn.impl
        args = [self.evaluator(a) for a in node.args]
        if len(args) == 1:
            only = args[0]
            return lambda env: impl(only(env))
        return lambda env: impl(*(a(env) for a in args))


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


def _operand_literal(node: ast.expr) -> Operand:
    value = _literal_value(node)
    return _Lit(value) if value is not _NOT_LITERAL else _LIST


def _is_null(o: Operand) -> bool:
    return isinstance(o, _Lit) and o is not _LIST and o.value is None


def _neg(a: Any) -> Any:
    return -a if _is_num(a) else None


def _pos(a: Any) -> Any:
    return a if _is_num(a) else None


def _getter(o: Operand) -> Getter:
    if isinstance(o, _Lit):
        v = o.value
        return lambda env: v
    return o.source.get


def _label(o: Operand) -> str:
    return repr(o.value) if isinstance(o, _Lit) else o.source.label


_NOT_LITERAL: Any = object()


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


def _not_on_state(node: ir.Node) -> ir.Node:
    """Keep a condition that holds on an empty fact from matching durable-rules' state fact.

    The first fact asserted for a session id makes durable-rules create the session's state,
    ``{"sid": "0", "id": "sid-0", "$s": 1}``, and run it through the rules *as a fact*: a rule
    like ``company == null and company_domain == null`` (all keys absent) fires for it once.
    Requiring the key every lead's fact carries excludes it.
    """
    if isinstance(node, ir.Const) and not node.value:
        return node
    if not ir.holds(node, {}):
        return node
    return ir.all_of(ir.Test("eq", ALWAYS, 1), node)


MAX_PARTS = 64


def split_condition(node: ir.Node) -> list[ir.Node]:
    """The rule as durable-rules conditions, each within durable-rules' 31 expression slots.

    One condition when it fits; otherwise an ``or`` is split into groups (each its own
    durable-rules rule with the same action) and an ``and`` is distributed over its largest
    ``or`` first: ``a and (b or c)`` → ``(a and b) or (a and c)``. None when it never matches.
    """
    if isinstance(node, ir.Const) and not node.value:
        return []
    parts = _pieces(node)
    if len(parts) > MAX_PARTS:
        raise Unsupported(f"the condition is too large for durable-rules: it would take "
                          f"{len(parts)} durable-rules rules (at most {MAX_PARTS})")
    return parts


def _cost(node: ir.Node) -> int:
    return ir.expression_slots(_not_on_state(node))


def _pieces(node: ir.Node, depth: int = 0) -> list[ir.Node]:
    if _cost(node) <= MAX_SLOTS:
        return [_not_on_state(node)]
    if depth > 12:
        raise Unsupported(f"the condition needs {_cost(node)} durable-rules expression slots "
                          f"and cannot be split to fit {MAX_SLOTS}")
    if isinstance(node, ir.Or):
        out: list[ir.Node] = []
        group: list[ir.Node] = []
        for item in node.items:
            if _cost(item) > MAX_SLOTS:
                out.extend(_pieces(item, depth + 1))
            elif group and _cost(ir.any_of(*group, item)) > MAX_SLOTS:
                out.append(_not_on_state(ir.any_of(*group)))
                group = [item]
            else:
                group.append(item)
            if len(out) > MAX_PARTS:
                return out
        if group:
            out.append(_not_on_state(ir.any_of(*group)))
        return out
    if isinstance(node, ir.And):
        ors = [i for i in node.items if isinstance(i, ir.Or)]
        if ors:
            pick = max(ors, key=ir.expression_slots)
            rest = [i for i in node.items if i is not pick]
            return _pieces(ir.any_of(*(ir.all_of(*rest, alt) for alt in pick.items)), depth + 1)
    raise Unsupported(f"the condition needs {_cost(node)} durable-rules expression slots; at "
                      f"most {MAX_SLOTS} fit in one rule")
