"""The rules engine: rule files in, decisions out. Pure: no I/O besides reading the rule files,
no clock reads, no Redis; the lowest layer of the service (it imports nothing else of router/).

This is its public face; the modules behind it are its implementation::

    ruleset = load_directory("rules", intake=compile_intake)  # RulesetError lists every problem
    ev = evaluate(ruleset, lead, snapshot, now=now)            # an Evaluation
    steps = explain(ruleset, ev)                               # the readable explanation

Other evaluation backends (e.g. durable-rules, the ``leadrouter-durable`` distribution) build on
the names under "backends" below; see :mod:`router.engine.backend` for the contract.
"""

from __future__ import annotations

from router.engine._yaml import Document
from router.engine.backend import (
    COMPILED,
    ENTRY_POINT_GROUP,
    Backend,
    BackendRefused,
    Evaluator,
    compiled_evaluator,
)
from router.engine.errors import RuleError, RulesetError, explain_validation
from router.engine.evaluate import (
    DEFAULT_STATUS,
    NO_RULE,
    Evaluation,
    Snapshot,
    build_env,
    evaluate,
    explain,
    owner_route,
)
from router.engine.functions import BUILTINS, Function
from router.engine.loader import Section, SectionCompiler, load_directory, load_texts
from router.engine.ruleset import CompiledRule, Route, Ruleset, Stage

# loading: load_directory, load_texts, Section(Compiler), Document, RuleError(s), explain_validation
# evaluating: Ruleset, evaluate, explain, Evaluation, Snapshot
# backends: Backend, Evaluator, BackendRefused, ENTRY_POINT_GROUP, COMPILED, compiled_evaluator,
#   and what one needs to decide exactly like the compiled engine: build_env, NO_RULE,
#   owner_route, DEFAULT_STATUS, CompiledRule, Route, Stage, Function, BUILTINS
__all__ = [
    "BUILTINS",
    "COMPILED",
    "DEFAULT_STATUS",
    "ENTRY_POINT_GROUP",
    "NO_RULE",
    "Backend",
    "BackendRefused",
    "CompiledRule",
    "Document",
    "Evaluation",
    "Evaluator",
    "Function",
    "Route",
    "RuleError",
    "Ruleset",
    "RulesetError",
    "Section",
    "SectionCompiler",
    "Snapshot",
    "Stage",
    "build_env",
    "compiled_evaluator",
    "evaluate",
    "explain",
    "explain_validation",
    "load_directory",
    "load_texts",
    "owner_route",
]
