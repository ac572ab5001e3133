"""durable-rules as a second evaluation backend: the same rule files, an independent engine.

The default engine compiles rule expressions to Python functions (:mod:`router.engine.expr`).
This package runs the same :class:`~router.engine.Ruleset` on durable-rules, a Rete engine with
a C core, and produces exactly the same :class:`~router.engine.Evaluation` (stage outputs,
matched rule ids, contributions in order, route, SLA policy, ``decided``). Its main use is as a
conformance oracle: it reads each rule's original ``when`` source and implements the language's
semantics a second time, so a difference between the two engines on any lead is a bug in one of
them (see ``backends/durable/tests/test_engine.py``).

    engine = DurableEngine(ruleset)              # raises DurableUnsupported, listing rules
    ev = engine.evaluate(lead, snapshot, now=now)

or, to pick the engine by name (``compiled`` | ``durable``) as the service does:
``router.services.rules.find_backend(name)(ruleset)``.

It is a distribution of its own, ``leadrouter-durable``, outside the service's production path:
durable-rules' last release is from 2020 and its C extension does not import on Python >= 3.13
(:func:`durable_unavailable` says why it cannot be used). The core never imports it: this
package registers :func:`durable_evaluator` as the engine ``durable`` in the entry point group
``leadrouter.engines``, where the rules service finds it when ``LEADROUTER_ENGINE=durable``.
Calls into durable-rules are serialised with one process-wide lock.
"""

from __future__ import annotations

from collections.abc import Mapping

from leadrouter_durable._native import durable_unavailable
from leadrouter_durable.engine import DurableEngine
from leadrouter_durable.errors import DurableError, DurableUnavailable, DurableUnsupported
from router.engine import Evaluator, Function, Ruleset

__all__ = [
    "DurableEngine",
    "DurableError",
    "DurableUnavailable",
    "DurableUnsupported",
    "durable_evaluator",
    "durable_unavailable",
]


def durable_evaluator(ruleset: Ruleset, *,
                      functions: Mapping[str, Function] | None = None) -> Evaluator:
    """The engine ``durable`` (a :class:`router.engine.Backend`): ``ruleset`` on durable-rules.

    Raises :class:`DurableUnsupported` listing the rules it cannot run, and
    :class:`DurableUnavailable` when durable-rules does not import here.
    """
    return DurableEngine(ruleset, functions=functions).evaluate

