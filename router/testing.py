"""Test a leadrouter plugin against the real service: the ``leadrouter`` pytest fixture.

Installing the ``leadrouter`` distribution registers this module with pytest (entry point
``pytest11``, name ``leadrouter``), so a plugin's tests get a ``leadrouter`` fixture beside the
SDK's ``make_lead`` and ``make_event`` (:mod:`leadrouter_sdk.testing`)::

    def test_role_accounts_lose_points(leadrouter, make_lead):
        harness = leadrouter(MyScorer())                    # your plugin, registered
        result = harness.evaluate(make_lead(email="info@acme.com"))
        assert result.contributions("my.rule")[0].points == -10
        assert result.status == "nurture"

``leadrouter(*plugins, rules=None, now=None, budget=0.25)`` returns a :class:`Harness`: the
service's own plugin host (the same isolation, budgets and circuit breaker) and the pure rule
engine, with :data:`leadrouter_sdk.testing.DEFAULT_RULES` unless you pass ``rules`` (a rules
directory, or ``{file name: YAML text}``). Nothing touches Redis or the network.

This module is wiring, like ``router/app``: it may import any layer, and no layer imports it.
The SDK (the layer everything builds on) never imports the service, which is why the harness
lives here and not in ``leadrouter_sdk.testing``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from leadrouter_sdk import Contribution, Event, Lead
from leadrouter_sdk.testing import DEFAULT_RULES, Result, make_lead

if TYPE_CHECKING:
    from router.engine import Evaluator, Ruleset
    from router.plugins.host import PluginHost

__all__ = ["Harness", "leadrouter_fixture"]

T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise RuntimeError("inside a running event loop: await the a*() variant instead "
                       "(aevaluate, aenrich, ascore, adeliver)")


class Harness:
    """Plugins registered on the service's plugin host, evaluated with a ruleset."""

    host: PluginHost
    ruleset: Ruleset
    evaluator: Evaluator

    def __init__(self, *plugins: object, rules: str | Path | Mapping[str, str] | None = None,
                 now: dt.datetime | None = None, budget: float = 0.25,
                 event_budget: float = 5.0, breaker_threshold: int = 5,
                 breaker_cooldown: float = 30.0,
                 clock: Callable[[], float] | None = None) -> None:
        # Imported here, not at the top: pytest imports this module when it starts (before
        # pytest-cov begins measuring), so a top-level import of the service would load it in
        # every test run of the environment and hide its module-level lines from coverage.
        from router.engine import compiled_evaluator, load_directory, load_texts
        from router.plugins.host import PluginHost

        self.host = PluginHost(budget=budget, event_budget=event_budget,
                               breaker_threshold=breaker_threshold,
                               breaker_cooldown=breaker_cooldown, strict=True,
                               clock=clock or time.monotonic, metrics=False)
        for i, plugin in enumerate(plugins):
            name = getattr(plugin, "name", None)
            self.host.register(plugin, name=name if isinstance(name, str) else f"plugin{i}")
        functions = self.host.functions()
        if isinstance(rules, str | Path):
            self.ruleset = load_directory(rules, functions=functions)
        else:
            self.ruleset = load_texts(dict(rules or DEFAULT_RULES), functions=functions)
        self.evaluator = compiled_evaluator(self.ruleset)
        self.now = now or dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)

    def _lead(self, lead: Lead | Mapping[str, Any]) -> Lead:
        return lead if isinstance(lead, Lead) else make_lead(**lead)

    async def aenrich(self, lead: Lead | Mapping[str, Any]) -> Lead:
        enriched, _ = await self.host.enrich(self._lead(lead))
        return enriched

    async def ascore(self, lead: Lead | Mapping[str, Any], *,
                     account_owner: str | None = None) -> tuple[Contribution, ...]:
        lead = self._lead(lead)
        context = self.host.context(lead, now=self.now, rules_version=self.ruleset.version,
                                    account_owner=account_owner)
        contributions, _ = await self.host.score(lead, context)
        return contributions

    async def aevaluate(self, lead: Lead | Mapping[str, Any], *,
                        account_owner: str | None = None) -> Result:
        """Enrich → score → rules → route override → explain, as ``POST /v1/leads`` does
        before its commit, through the service's one decider (``router.services.decide``).
        No rep is picked (the commit does that): ``route_target`` is the pool, queue or
        owner."""
        from router.engine.cases import CaseState
        from router.services.decide import dry_run

        plan = await dry_run(self._lead(lead), CaseState(account_owner=account_owner),
                             self.now, self.ruleset, evaluator=self.evaluator,
                             plugins=self.host)
        ev, route = plan.evaluation, plan.evaluation.route
        return Result(lead=plan.lead, status=ev.status, score=ev.score,
                      territory=ev.territory, segment=ev.segment, route_kind=route.kind,
                      route_target=route.target, route_rule=route.rule,
                      route_reason=route.reason, sla_policy=plan.sla_policy,
                      matched=ev.matched, explanation=plan.explanation)

    async def adeliver(self, event: Event, plugin: str | None = None) -> None:
        """Hand ``event`` to a sink (the only one, or ``plugin``) as the outbox does; raises
        ``router.plugins.host.DeliveryFailed`` when the sink would get it again later."""
        sinks = self.host.sinks
        name = plugin or (sinks[0] if len(sinks) == 1 else None)
        if name is None:
            raise ValueError(f"name the sink: one of {', '.join(sinks) or '(none)'}")
        await self.host.deliver(name, event)

    def enrich(self, lead: Lead | Mapping[str, Any]) -> Lead:
        return _run(self.aenrich(lead))

    def score(self, lead: Lead | Mapping[str, Any], *,
              account_owner: str | None = None) -> tuple[Contribution, ...]:
        return _run(self.ascore(lead, account_owner=account_owner))

    def evaluate(self, lead: Lead | Mapping[str, Any], *,
                 account_owner: str | None = None) -> Result:
        return _run(self.aevaluate(lead, account_owner=account_owner))

    def deliver(self, event: Event, plugin: str | None = None) -> None:
        _run(self.adeliver(event, plugin))


@pytest.fixture(name="leadrouter")
def leadrouter_fixture() -> Callable[..., Harness]:
    """Factory: ``leadrouter(*plugins, rules=None, now=None, budget=0.25, ...)`` → Harness."""
    return Harness
