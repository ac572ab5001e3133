"""Values in value context: the operand a rule expression reads (a literal or a source), and the
kinds (slots) a computed value can take.
"""

from __future__ import annotations

import ast
from typing import Any

from leadrouter_durable._evaluate import _Evaluator
from leadrouter_durable._fact import ALL_SLOTS, ATTRIBUTE_SLOTS, KIND_SLOTS, encode
from leadrouter_durable._sources import (
    _NOT_LITERAL,
    Operand,
    _attribute_key,
    _getter,
    _kind_of,
    _label,
    _Lit,
    _literal_value,
    _special_getter,
    _Val,
)
from router.engine.functions import BUILTINS


class _Operands(_Evaluator):
    """Turns rule expressions used as values into operands, computing in Python what
    durable-rules cannot."""

    # -- operands (value context) --------------------------------------------------------------
    @staticmethod
    def literal(value: Any) -> Operand:
        return _Lit(value)

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
