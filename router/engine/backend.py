"""The contract between the engine and an evaluation backend: another engine for the same rules.

The compiled engine (:func:`router.engine.evaluate.evaluate`) is the default and always there.
Other backends live in distributions of their own (durable-rules: ``leadrouter-durable``) and
register a :class:`Backend` under the entry point group :data:`ENTRY_POINT_GROUP`, named as
``LEADROUTER_ENGINE`` names them; the rules service (router/services/rules.py) finds them there.
Nothing in the core imports a backend, so one that is unmaintained or does not build on this
Python never stands in the way of the service.

A backend must decide exactly what the compiled engine decides: the same
:class:`~router.engine.evaluate.Evaluation`, field for field, for the same lead, snapshot and
``now`` (``build_env``, ``NO_RULE``, ``owner_route`` and ``DEFAULT_STATUS`` in
:mod:`router.engine` are the shared pieces that make that possible).
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Mapping
from typing import Protocol

from leadrouter_sdk import Contribution, Lead

from router.engine.evaluate import Evaluation, Snapshot, evaluate
from router.engine.functions import Function
from router.engine.ruleset import Ruleset

__all__ = ["COMPILED", "ENTRY_POINT_GROUP", "Backend", "BackendRefused", "Evaluator",
           "compiled_evaluator"]

# The entry point group a backend registers its Backend under; the entry point's name is the
# engine's name (LEADROUTER_ENGINE).
ENTRY_POINT_GROUP = "leadrouter.engines"
# The built-in engine's name: never looked up, always available.
COMPILED = "compiled"


class Evaluator(Protocol):
    """``evaluate`` with the ruleset (and engine) already chosen."""

    def __call__(self, lead: Lead, snapshot: Snapshot | None = None, *,
                 now: datetime.datetime,
                 extra: tuple[Contribution, ...] = ()) -> Evaluation: ...


class Backend(Protocol):
    """Builds the :class:`Evaluator` of one ruleset; what an entry point of the group loads.

    ``functions`` are the expression functions the ruleset was loaded with (the built-ins
    unless plugins added some). Raises :class:`BackendRefused` when it cannot run the ruleset.
    """

    def __call__(self, ruleset: Ruleset, *,
                 functions: Mapping[str, Function] | None = None) -> Evaluator: ...


class BackendRefused(Exception):
    """The backend cannot run this ruleset here: it does not load on this Python, or the rules
    use what it cannot express. The message says which, and how to fix it; the rules service
    rejects the ruleset with it (the running ruleset keeps serving)."""


def compiled_evaluator(ruleset: Ruleset, *,
                       functions: Mapping[str, Function] | None = None) -> Evaluator:
    """The built-in engine as a :class:`Backend` (``functions`` are compiled in already)."""
    return functools.partial(evaluate, ruleset)
