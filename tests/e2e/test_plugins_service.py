"""Every hook through the real service: HTTP on a real uvicorn server, state in a real Valkey.

The app is built with ``create_app(..., plugins=host)`` so a test can register plugin objects
(and inject the breaker's clock); discovery itself is covered in tests/plugins/test_host.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _service import ADMIN_TOKEN, ThreadServer, lead, write_rules
from leadrouter_sdk import Contribution, Decision, Event, ExpressionFunction, Lead, hookimpl
from leadrouter_sdk import RouteOverride as Override

from router.app.application import create_app
from router.observability import metrics
from router.plugins.host import PluginHost
from router.settings import Settings


@pytest.fixture
def serve(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., ThreadServer]]:
    """``serve(*plugins, rules=None, **host_options)`` → a started ThreadServer."""
    servers: list[ThreadServer] = []

    def start(*plugins: object, rules: dict[str, str] | None = None,
              **options: Any) -> ThreadServer:
        host = PluginHost(**{"budget": 0.2, **options})
        for plugin in plugins:
            host.register(plugin, getattr(plugin, "name", None))
        directory = write_rules(tmp_path / f"rules{len(servers)}", rules)
        settings = Settings(redis_url=redis_url, admin_token=ADMIN_TOKEN,
                            reload_poll_seconds=0, rules_dir=str(directory),
                            outbox_poll_seconds=0.02)
        server = ThreadServer(create_app(settings, plugins=host))
        server.host = host  # type: ignore[attr-defined]
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


def _plugin_steps(decision: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in decision["explanation"] if s["stage"] == "plugins"]


class Enricher:
    name = "enricher"

    @hookimpl
    async def enrich(self, lead: Lead) -> dict[str, Any]:
        await asyncio.sleep(0.001)  # an async lookup
        return {"employees": 2000, "industry": "Software"}


class Scorer:
    name = "scorer"

    @hookimpl
    def score(self, lead: Lead, context: Any) -> list[Contribution]:
        assert context.company_domain == "acme-corp.example"
        return [Contribution(rule="intent.high", group="engagement", points=30,
                             reason="visited pricing"),
                Contribution(rule="custom.bonus", group="partner", points=5)]


class Functions:
    name = "functions"

    @hookimpl
    def register_functions(self) -> list[ExpressionFunction]:
        return [ExpressionFunction(name="is_partner", params=("text",), returns="boolean",
                                   impl=lambda e: isinstance(e, str) and e.endswith(".partner"),
                                   doc="partner domains", example="is_partner(email)")]


def test_enrich_and_score_hooks_feed_the_decision(serve: Callable[..., ThreadServer]) -> None:
    server = serve(Enricher(), Scorer())
    with server.client() as client:
        response = client.post("/v1/leads", json=lead(employees=None, budget=None))
        assert response.status_code == 201, response.text
        d = response.json()
        score = d["score"]
        # fit.big 25 (employees enriched to 2000) + fit.us 10 + intent 30 + partner group 5
        assert (score["total"], score["fit"], score["engagement"]) == (70, 35, 30)
        rules = {c["rule"]: c for c in score["contributions"]}
        assert rules["intent.high"]["reason"] == "visited pricing"
        assert rules["custom.bonus"]["group"] == "partner"
        assert d["segment"] == "enterprise"
        (step,) = _plugin_steps(d)
        assert step == {"stage": "plugins", "outcome": "enriched", "rule": "enricher",
                        "detail": "enrich filled employees, industry"}
        stored = client.get(f"/v1/leads/{d['lead_id']}").json()
        assert stored["score"] == score
        assert _plugin_steps(stored) == [step]


def test_dry_run_explains_what_routing_would_decide_with_plugins(
        serve: Callable[..., ThreadServer], redis_client: Any) -> None:
    server = serve(Enricher(), Scorer())
    with server.client() as client:
        before = redis_client.dbsize()
        dry = client.post("/v1/rules/evaluate", json=lead(employees=None, budget=None))
        assert dry.status_code == 200, dry.text
        assert redis_client.dbsize() == before  # a dry run writes nothing
        real = client.post("/v1/leads", json=lead(employees=None, budget=None)).json()
        body = dry.json()
        assert body["evaluation"]["score"] == real["score"]
        assert body["evaluation"]["status"] == real["status"]
        assert _plugin_steps(body) == _plugin_steps(real)


def test_plugin_functions_are_usable_in_rule_files(serve: Callable[..., ThreadServer]) -> None:
    rules = {"scoring.yaml": """\
scoring:
  fit:
    - {id: fit.partner, when: "is_partner(email)", points: 90}
qualification:
  - {id: q.sql, status: sql, when: "score >= 80"}
  - {id: q.mql, status: mql, when: "true"}
""", "tests/cases.yaml": """\
cases:
  - name: partner addresses are sql
    lead: {email: a@b.partner}
    expect: {status: sql, score: 90}
"""}
    server = serve(Functions(), rules=rules)
    with server.client() as client:
        assert client.post("/v1/leads", json=lead(email="a@b.partner")).json()["status"] == "sql"
        assert client.post("/v1/leads", json=lead()).json()["status"] == "mql"
        reload = client.post("/v1/admin/rules/reload",
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert reload.status_code == 200, reload.text


def test_route_override_and_on_decision(serve: Callable[..., ThreadServer]) -> None:
    decisions: list[tuple[Lead, Decision]] = []

    class Vip:
        name = "vip"

        @hookimpl
        def route(self, lead: Lead, decision: Any) -> Override | None:
            if lead.company == "VIP Inc":
                return Override(pool="wrr", reason="strategic account")
            return None

        @hookimpl
        async def on_decision(self, lead: Lead, decision: Decision) -> None:
            decisions.append((lead, decision))

    server = serve(Vip())
    with server.client() as client:
        d = client.post("/v1/leads", json=lead(company="VIP Inc")).json()
        assert (d["assignment"]["pool"], d["assignment"]["rule"]) == ("wrr", "plugin:vip")
        assert d["assignment"]["owner"] in ("w1", "w2", "w3")
        (step,) = _plugin_steps(d)
        assert step["outcome"] == "pool:wrr"
        assert "strategic account (the rules chose pool:rr)" in step["detail"]
        plain = client.post("/v1/leads", json=lead()).json()
        assert plain["assignment"]["pool"] == "rr"
    assert [dec.lead_id for _, dec in decisions] == [d["lead_id"], plain["lead_id"]]
    assert decisions[0][1].assignment.pool == "wrr"


class Raising:
    name = "raising"

    @hookimpl
    def score(self, lead: Lead) -> None:
        raise ZeroDivisionError("bug in the plugin")


class Slow:
    name = "slow"

    @hookimpl
    async def enrich(self, lead: Lead) -> dict[str, Any]:
        await asyncio.sleep(30)  # longer than any stall of a busy machine
        return {"industry": "too late"}


def _errors(plugin: str, hook: str) -> float:
    return metrics.sample_value("leadrouter_plugin_errors_total",
                                {"plugin": plugin, "hook": hook})


def test_raising_and_slow_plugins_do_not_fail_leads(serve: Callable[..., ThreadServer]) -> None:
    raised, slow = _errors("raising", "score"), _errors("slow", "enrich")
    server = serve(Raising(), Slow(), budget=0.1)
    with server.client() as client:
        start = time.perf_counter()
        response = client.post("/v1/leads", json=lead())
        # answered while the plugin still sleeps (30 s): the budget (0.1 s) cut it off; the
        # bound is the plugin's sleep, not how fast this machine answers
        assert time.perf_counter() - start < 30
        assert response.status_code == 201, response.text
        d = response.json()
        assert d["score"]["total"] == 55  # the rules' own score
        steps = {s["rule"]: s for s in _plugin_steps(d)}
        assert steps["raising"]["outcome"] == "skipped"
        assert "raised ZeroDivisionError: bug in the plugin" in steps["raising"]["detail"]
        assert "contribution was skipped" in steps["raising"]["detail"]
        assert "enrich ran past its 100 ms budget" in steps["slow"]["detail"]
        assert client.get(f"/v1/leads/{d['lead_id']}").json()["explanation"] == \
            d["explanation"]
        exposition = client.get("/metrics").text
    assert _errors("raising", "score") == raised + 1
    assert _errors("slow", "enrich") == slow + 1
    assert 'leadrouter_plugin_errors_total{hook="score",plugin="raising"}' in exposition


def test_the_breaker_opens_and_closes_in_the_service(
        serve: Callable[..., ThreadServer]) -> None:
    now = [0.0]

    class Flaky:
        name = "flaky"
        failing = True

        @hookimpl
        def score(self, lead: Lead) -> Contribution:
            if self.failing:
                raise RuntimeError("down")
            return Contribution(rule="flaky.up", group="fit", points=1)

    flaky = Flaky()
    server = serve(flaky, breaker_threshold=2, breaker_cooldown=60, clock=lambda: now[0])
    with server.client() as client:
        def post() -> dict[str, Any]:
            response = client.post("/v1/leads", json=lead())
            assert response.status_code == 201
            data: dict[str, Any] = response.json()
            return data

        post()
        opened = _plugin_steps(post())[0]["detail"]
        assert "switched off for 60 s after 2 consecutive failures" in opened
        assert "is switched off after repeated failures" in _plugin_steps(post())[0]["detail"]
        now[0] += 61
        flaky.failing = False
        recovered = post()
        assert not _plugin_steps(recovered)
        assert "flaky.up" in {c["rule"] for c in recovered["score"]["contributions"]}
        assert server.host.counts[("flaky", "score", "skipped")] == 1  # type: ignore[attr-defined]


def test_on_event_sink_gets_outbox_events_from_the_service(
        serve: Callable[..., ThreadServer]) -> None:
    got: list[Event] = []

    class Sink:
        name = "sink"

        @hookimpl
        def on_event(self, event: Event) -> None:
            got.append(event)

    server = serve(Sink())
    with server.client() as client:
        ids = [client.post("/v1/leads", json=lead(campaign=c)).json()["lead_id"]
               for c in ("x", "junk")]
    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [(e.lead_id, e.type) for e in got] == [(ids[0], "lead.assigned"),
                                                  (ids[1], "lead.queued")]
    assert got[0].data["pool"] == "rr" and got[0].data["decision"]["status"] == "mql"
    assert got[1].data["queue"] == "review"
