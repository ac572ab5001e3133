"""Build the inputs of a plugin's tests: a pytest plugin, loaded automatically.

Installing ``leadrouter-sdk`` registers this module with pytest (entry point ``pytest11``, name
``leadrouter_sdk``), so a plugin's tests get two fixtures: ``make_lead(**fields)`` builds a
normalised :class:`~leadrouter_sdk.Lead` from a few defaults plus your fields;
``make_event(type=..., **fields)`` builds an :class:`~leadrouter_sdk.Event` for ``on_event``
tests.

Running the plugin through the service's plugin host and rule engine (the ``leadrouter``
fixture, :class:`router.testing.Harness`) needs the service, so it lives in the ``leadrouter``
distribution, a test dependency of your plugin: the SDK is the layer the service builds on and
never imports it. What the harness shares with the SDK stays here, service-free: its default
ruleset (:data:`DEFAULT_RULES`, plain YAML text) and what it returns (:class:`Result`, made of
SDK types)::

    def test_role_accounts_lose_points(leadrouter, make_lead):
        harness = leadrouter(MyScorer())                    # your plugin, registered
        result = harness.evaluate(make_lead(email="info@acme.com"))
        assert result.contributions("my.rule")[0].points == -10
        assert result.status == "nurture"
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from leadrouter_sdk._decision import Contribution, Score, Step
from leadrouter_sdk._lead import Lead, lead_from_mapping
from leadrouter_sdk.hookspecs import Event

__all__ = ["DEFAULT_RULES", "Result", "make_event", "make_lead"]

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
    """What the rules (and the plugins) decided about one lead, without committing it: the
    answer of ``router.testing.Harness.evaluate``."""

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


@pytest.fixture(name="make_lead")
def make_lead_fixture() -> Callable[..., Lead]:
    """Factory: ``make_lead(**fields)`` → a normalised Lead."""
    return make_lead


@pytest.fixture(name="make_event")
def make_event_fixture() -> Callable[..., Event]:
    """Factory: ``make_event(type="lead.assigned", **fields)`` → an Event."""
    return make_event
