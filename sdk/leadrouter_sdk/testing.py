"""Test a leadrouter plugin in a few lines: a pytest plugin, loaded automatically.

Installing ``leadrouter-sdk`` registers this module with pytest (entry point ``pytest11``), so
a plugin's tests get two fixtures::

    def test_role_accounts_lose_points(leadrouter, make_lead):
        harness = leadrouter(MyScorer())                    # your plugin, registered
        result = harness.evaluate(make_lead(email="info@acme.com"))
        assert result.contributions("my.rule")[0].points == -10
        assert result.status == "nurture"

``leadrouter(*plugins, rules=None, now=None, budget=0.25)`` returns a :class:`Harness`: the
service's own plugin host (the same isolation, budgets and circuit breaker) and the pure rule
engine, with a small built-in ruleset unless you pass ``rules`` (a rules directory, or
``{file name: YAML text}``). Nothing touches Redis or the network. It needs the ``leadrouter``
distribution importable (a test dependency of your plugin); the fixtures import it lazily.

``make_lead(**fields)`` builds a normalised :class:`~leadrouter_sdk.Lead` from a few defaults
plus your fields; ``make_event(type=..., **fields)`` builds an :class:`~leadrouter_sdk.Event`
for ``on_event`` tests.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest

from leadrouter_sdk._decision import Contribution, Score, Step
from leadrouter_sdk._lead import Lead, lead_from_mapping
from leadrouter_sdk.hookspecs import Event

__all__ = ["DEFAULT_RULES", "Harness", "Result", "make_event", "make_lead"]

T = TypeVar("T")

_ALL_DAY = '{mon-sun: "00:00-24:00"}'
DEFAULT_RULES: dict[str, str] = {
    "rules.yaml": f"""\
reps:
  - {{id: r1, timezone: UTC, working_hours: {_ALL_DAY}}}
  - {{id: r2, timezone: UTC, working_hours: {_ALL_DAY}}}
scoring:
  fit:
    - {{id: fit.big, when: "employees >= 1000", points: 30}}
    - {{id: fit.mid, when: "employees >= 100 and employees < 1000", points: 15}}
  bant:
    - {{id: bant.budget, when: "budget >= 50000", points: 20}}
grades: {{A: 80, B: 50, C: 20, D: 0}}
qualification:
  - {{id: q.bad, status: bad_lead, when: "score < 0"}}
  - {{id: q.mql, status: mql, when: "score >= 50"}}
  - {{id: q.nurture, status: nurture, when: "true"}}
pools:
  main: {{strategy: round_robin, members: [r1, r2], working_hours: false}}
assignment:
  - {{id: to-main, when: 'status == "mql"', pool: main}}
  - {{id: to-inbox, when: "true", queue: inbox}}
""",
}
"""The harness' ruleset: fit.big (employees >= 1000) 30, fit.mid 15, bant.budget 20; score < 0
→ bad_lead, >= 50 → mql (pool ``main`` of reps r1, r2), else nurture (queue ``inbox``)."""

_LEAD_DEFAULTS: dict[str, Any] = {"email": "jane.doe@acme-corp.example", "first_name": "Jane",
                                  "last_name": "Doe", "company": "Acme Corp"}


def make_lead(**fields: Any) -> Lead:
    """A normalised lead: a few defaults (a named person at a company address) + ``fields``.
    Pass ``field=None`` to leave a default out."""
    data = {**_LEAD_DEFAULTS, **fields}
    return lead_from_mapping({k: v for k, v in data.items() if v is not None})


def make_event(type: str = "lead.assigned", *, lead_id: str = "ld_test",
               id: str = "1700000000000-0", at: dt.datetime | None = None,
               attempt: int = 1, **data: Any) -> Event:
    """An outbox event as an ``on_event`` sink receives it."""
    when = at or dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    return Event(id=id, type=type, lead_id=lead_id, at=when, attempt=attempt, data=data)


class Result(msgspec.Struct, frozen=True, kw_only=True):
    """What the rules (and the plugins) decided about one lead, without committing it."""

    lead: Lead  # as enriched
    status: str
    score: Score
    territory: str | None
    segment: str | None
    route_kind: str
    route_target: str | None
    route_rule: str | None
    route_reason: str
    sla_policy: str | None
    matched: tuple[str, ...]
    explanation: tuple[Step, ...]

    def contributions(self, rule: str | None = None) -> list[Contribution]:
        """Every contribution, or those of one rule id."""
        return [c for c in self.score.contributions if rule is None or c.rule == rule]

    def plugin_steps(self) -> list[Step]:
        """The explanation lines plugins added (enriched, skipped, route override)."""
        return [s for s in self.explanation if s.stage == "plugins"]


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

    def __init__(self, *plugins: object, rules: str | Path | Mapping[str, str] | None = None,
                 now: dt.datetime | None = None, budget: float = 0.25,
                 event_budget: float = 5.0, breaker_threshold: int = 5,
                 breaker_cooldown: float = 30.0,
                 clock: Callable[[], float] | None = None) -> None:
        import time

        from router.engine.loader import load_directory, load_texts
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
        """Enrich → score → rules → route override, as ``POST /v1/leads`` does before its
        commit (no rep is picked: ``route_target`` is the pool, queue or owner)."""
        from router.engine.evaluate import Snapshot, explain

        lead, notes = await self.host.enrich(self._lead(lead))
        ev, steps = await self.host.evaluate(
            self.ruleset, lead, Snapshot(account_owner=account_owner), now=self.now,
            notes=notes)
        route = ev.route
        return Result(lead=lead, status=ev.status, score=ev.score, territory=ev.territory,
                      segment=ev.segment, route_kind=route.kind, route_target=route.target,
                      route_rule=route.rule, route_reason=route.reason,
                      sla_policy=ev.sla_policy, matched=ev.matched,
                      explanation=explain(self.ruleset, ev) + steps)

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


@pytest.fixture(name="make_lead")
def make_lead_fixture() -> Callable[..., Lead]:
    """Factory: ``make_lead(**fields)`` → a normalised Lead."""
    return make_lead


@pytest.fixture(name="make_event")
def make_event_fixture() -> Callable[..., Event]:
    """Factory: ``make_event(type="lead.assigned", **fields)`` → an Event."""
    return make_event
