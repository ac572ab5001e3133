"""Fitting a rule's condition into durable-rules' limits: split into several durable-rules rules
(with the same action) when it needs more than the 31 expression slots of one.
"""

from __future__ import annotations

from leadrouter_durable import _ir as ir
from leadrouter_durable._fact import ALWAYS, MAX_SLOTS, Unsupported


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
