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
from dataclasses import dataclass
from typing import Any

from leadrouter_durable import _ir as ir
from leadrouter_durable._conditions import _Conditions
from leadrouter_durable._fact import (
    ALWAYS,
    FIXED_PROPERTIES,
    MAX_FACT_PROPERTIES,
    MAX_SLOTS,
    Unsupported,
    encode,
    fnv1_32,
)
from leadrouter_durable._sources import Source
from leadrouter_durable._split import split_condition

__all__ = ["ALWAYS", "MAX_SLOTS", "Source", "StagePlan", "StageTranslator", "Unsupported",
           "encode", "fnv1_32", "split_condition"]


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


class StageTranslator(_Conditions):
    """Collects the sources and durable-rules conditions of one stage's rules.

    Built in layers, one module each: :mod:`~leadrouter_durable._sources` (sources and the names
    they resolve), :mod:`~leadrouter_durable._evaluate` (Python evaluation of computed values),
    :mod:`~leadrouter_durable._operands` (value context), :mod:`~leadrouter_durable._conditions`
    (truthiness context); this class assembles rules and the stage.
    """

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
