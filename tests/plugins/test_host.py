"""The plugin host: registration checks, discovery, isolation (budgets, breaker), the harness.

Service-level tests (each hook through real HTTP and a real Valkey) are in
tests/e2e/test_plugins_service.py; outbox delivery in tests/test_outbox*.py.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
from leadrouter_sdk import (
    Contribution,
    ExpressionFunction,
    Lead,
    PluginDisabled,
    RouteOverride,
    hookimpl,
)
from leadrouter_sdk.testing import make_lead

from router.engine.errors import RulesetError
from router.engine.loader import load_texts
from router.plugins.host import HOOKS, PluginError, PluginHost
from router.settings import Settings
from router.testing import Harness


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Scorer:
    name = "scorer"

    def __init__(self, points: float = 7, group: str = "fit") -> None:
        self.points = points
        self.group = group
        self.calls = 0

    @hookimpl
    def score(self, lead: Lead) -> Contribution:  # a subset of the arguments is fine
        self.calls += 1
        return Contribution(rule="scorer.flat", group=self.group, points=self.points,
                            reason="always")


class Flaky:
    """Raises while ``failing`` is set."""

    name = "flaky"

    def __init__(self) -> None:
        self.failing = True
        self.calls = 0

    @hookimpl
    def score(self, *, lead: Lead, context: Any) -> list[Contribution]:  # keyword-only
        self.calls += 1
        if self.failing:
            raise RuntimeError("lookup service down")
        return [Contribution(rule="flaky.ok", group="fit", points=1)]


# -- registration ----------------------------------------------------------------------------


def test_hookspecs_take_keyword_only_arguments() -> None:
    from router.plugins.host import hook_signatures

    sigs = hook_signatures()
    assert tuple(sigs) == HOOKS
    for name, sig in sigs.items():
        assert all(p.kind is p.KEYWORD_ONLY for p in sig.parameters.values()), name


def test_positional_keyword_only_and_subset_implementations_all_work(leadrouter: Any) -> None:
    class Positional:
        @hookimpl
        def score(self, lead: Lead, context: Any) -> Contribution:
            return Contribution(rule="p", group="fit", points=1)

    class KeywordOnly:
        @hookimpl
        def score(self, *, context: Any, lead: Lead) -> Contribution:
            return Contribution(rule="k", group="fit", points=2)

    class Kwargs:
        @hookimpl
        def score(self, **kwargs: Any) -> Contribution:
            assert set(kwargs) == {"lead", "context"}
            return Contribution(rule="w", group="fit", points=4)

    h = leadrouter(Positional(), KeywordOnly(), Kwargs())
    assert sorted(c.rule for c in h.score(make_lead())) == ["k", "p", "w"]


def test_unknown_hook_name_is_refused() -> None:
    class Typo:
        @hookimpl
        def scroe(self, lead: Lead) -> None: ...

    host = PluginHost()
    info = host.register(Typo(), "typo")
    assert info.status == "failed"
    assert "scroe" in (info.error or "")
    assert not host.has("score")
    with pytest.raises(PluginError, match="scroe"):
        PluginHost(strict=True).register(Typo(), "typo")


def test_unknown_argument_is_refused() -> None:
    class Wrong:
        @hookimpl
        def score(self, lead: Lead, request: Any) -> None: ...

    class WrongKw:
        @hookimpl
        def enrich(self, *, lead: Lead, session: Any) -> None: ...

    host = PluginHost()
    assert host.register(Wrong(), "wrong").status == "failed"
    info = host.register(WrongKw(), "wrongkw")
    assert info.status == "failed" and "session" in (info.error or "")
    assert not host.has("score") and not host.has("enrich")


def test_import_failure_is_reported_and_skipped_unless_strict() -> None:
    host = PluginHost()
    host.discover(entry_points=False, modules=["no_such_module_xyz", "json:nothing_here"])
    infos = {i.name: i for i in host.plugins()}
    assert infos["no_such_module_xyz"].status == "failed"
    assert "ModuleNotFoundError" in (infos["no_such_module_xyz"].error or "")
    assert infos["json:nothing_here"].status == "failed"
    with pytest.raises(PluginError, match="no_such_module_xyz"):
        PluginHost(strict=True).discover(entry_points=False, modules=["no_such_module_xyz"])


def test_a_disabled_plugin_is_not_a_failure_even_when_strict(tmp_path: Path) -> None:
    mod = tmp_path / "lr_disabled_plugin.py"
    mod.write_text("from leadrouter_sdk import PluginDisabled\n"
                   "class P:\n    def __init__(self):\n        raise PluginDisabled('no key')\n")
    sys.path.insert(0, str(tmp_path))
    try:
        host = PluginHost(strict=True)
        host.discover(entry_points=False, modules=["lr_disabled_plugin:P"])
    finally:
        sys.path.remove(str(tmp_path))
    (info,) = host.plugins()
    assert (info.status, info.error) == ("disabled", "no key")
    assert PluginDisabled.__name__ == "PluginDisabled"


def test_entry_point_discovery_finds_the_workspace_plugins(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    for var in ("LEADROUTER_FIRMOGRAPHICS_FILE", "LEADROUTER_WEBHOOK_URLS",
                "LEADROUTER_WEBHOOK_SECRET"):
        monkeypatch.delenv(var, raising=False)
    host = PluginHost.from_settings(Settings(), metrics=False)
    infos = {i.name: i for i in host.plugins()}
    assert {"email-quality", "firmographics", "webhook"} <= set(infos)
    eq = infos["email-quality"]
    assert (eq.status, eq.source, eq.version) == ("active", "entry point", "0.1.0")
    assert eq.hooks == ("score", "register_functions")
    assert infos["firmographics"].status == "disabled"  # no data file configured
    assert infos["webhook"].status == "disabled"
    assert {"is_role_email", "email_quality"} <= set(host.functions())

    csv = tmp_path / "companies.csv"
    csv.write_text("domain,employees,industry\nacme.com,1200,Software\n")
    monkeypatch.setenv("LEADROUTER_FIRMOGRAPHICS_FILE", str(csv))
    monkeypatch.setenv("LEADROUTER_WEBHOOK_URLS", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("LEADROUTER_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    host = PluginHost.from_settings(Settings(plugins_block="email-quality"), metrics=False)
    infos = {i.name: i for i in host.plugins()}
    assert infos["email-quality"].status == "blocked"
    assert infos["firmographics"].hooks == ("enrich",)
    assert infos["webhook"].hooks == ("on_event",)
    assert host.sinks == ("webhook",)
    everything_blocked = PluginHost.from_settings(Settings(plugins_block="*"), metrics=False)
    assert {i.status for i in everything_blocked.plugins()} == {"blocked"}


def test_cli_plugins_list() -> None:
    script = Path(sys.executable).with_name("leadrouter")
    env = {"PATH": str(script.parent), "LEADROUTER_PLUGINS": "no_such_module_xyz"}
    out = subprocess.run([str(script), "plugins", "list"], capture_output=True, text=True,
                         check=False, env=env, timeout=60)
    assert out.returncode == 1, out.stderr  # a failed plugin
    assert "email-quality 0.1.0  [active]" in out.stdout
    assert "hooks: score, register_functions" in out.stdout
    assert "no_such_module_xyz -  [failed]" in out.stdout
    out = subprocess.run([str(script), "plugins", "list", "--format", "json"],
                         capture_output=True, text=True, env={"PATH": env["PATH"]}, timeout=60,
                         check=False)
    assert out.returncode == 0, out.stderr
    plugins = {p["name"]: p for p in json.loads(out.stdout)["plugins"]}
    assert plugins["webhook"]["status"] == "disabled"
    assert plugins["email-quality"]["functions"] == ["is_role_email", "email_quality"]


# -- expression functions --------------------------------------------------------------------


class Functions:
    name = "fns"

    @hookimpl
    def register_functions(self) -> list[Any]:
        return [
            ExpressionFunction(name="tld", impl=lambda e: e.rpartition(".")[2]
                               if isinstance(e, str) else None,
                               params=("text",), returns="text", doc="top-level domain",
                               example='tld(email) == "io"'),
            ExpressionFunction(name="lower", impl=str.lower, params=("text",),
                               returns="text", doc="clashes with a built-in"),
            ExpressionFunction(name="bad_type", impl=len, params=("list",),  # type: ignore[arg-type]
                               returns="number", doc="unknown value type"),
        ]


RULES = """\
scoring:
  fit:
    - {id: fit.io, when: 'tld(email) == "io"', points: 40}
qualification:
  - {id: q.mql, status: mql, when: "score >= 40"}
"""


def test_plugin_functions_are_checked_at_rule_load_like_builtins() -> None:
    host = PluginHost()
    host.register(Functions())
    table = host.functions()
    assert table["tld"].returns == "text"
    assert table["lower"].impl is not str.lower  # the built-in stays
    (info,) = host.plugins()
    assert info.functions == ("tld",)
    assert any("already defined" in p for p in info.problems)
    assert any("unknown value type" in p for p in info.problems)
    ruleset = load_texts({"r.yaml": RULES}, functions=table)
    assert ruleset.rules["scoring:fit.io"].points == 40
    with pytest.raises(RulesetError, match="unknown function `tld`"):
        load_texts({"r.yaml": RULES})
    with pytest.raises(RulesetError, match=r"tld\(\) takes 1 argument"):
        load_texts({"r.yaml": RULES.replace("tld(email)", "tld(email, 1)")}, functions=table)


def test_functions_work_through_the_harness(leadrouter: Any) -> None:
    class Tld:
        @hookimpl
        def register_functions(self) -> list[ExpressionFunction]:
            return Functions().register_functions()[:1]

    h = leadrouter(Tld(), rules={"r.yaml": RULES})
    assert h.evaluate(make_lead(email="a@b.io")).status == "mql"
    assert h.evaluate(make_lead(email="a@b.com")).status == "nurture"


def test_plugin_points_are_floats_like_rule_points(leadrouter: Any) -> None:
    """A scorer's ``points=7`` is 7.0 in the decision, as a rule's 30 is 30.0: one number type
    (the JSON shows ``7.0``, never ``7`` beside ``30.0``)."""
    result = leadrouter(Scorer(points=7)).evaluate(make_lead(employees=5000))
    points = {c.rule: c.points for c in result.contributions()}
    assert points == {"fit.big": 30.0, "scorer.flat": 7.0}
    assert {type(p) for p in points.values()} == {float}
    encoded = msgspec.json.encode(result.score.contributions)
    assert b'"points":7.0' in encoded and b'"points":30.0' in encoded


# -- isolation ------------------------------------------------------------------------------


def test_a_raising_scorer_is_skipped_and_explained(leadrouter: Any) -> None:
    h = leadrouter(Scorer(), Flaky())
    result = h.evaluate(make_lead(employees=5000))
    assert [c.rule for c in result.contributions()] == ["fit.big", "scorer.flat"]
    assert result.score.total == 37
    (step,) = result.plugin_steps()
    assert (step.outcome, step.rule) == ("skipped", "flaky")
    assert "raised RuntimeError: lookup service down" in step.detail
    assert h.host.counts[("flaky", "score", "raised")] == 1
    assert h.host.counts[("scorer", "score", "ok")] == 1


def test_invalid_results_are_skipped(leadrouter: Any) -> None:
    class Bad:
        @hookimpl
        def score(self) -> Any:
            return [{"rule": "x", "points": 5}]

    class NaN:
        @hookimpl
        def score(self) -> Any:
            return Contribution(rule="nan", group="fit", points=float("nan"))

    class BadEnrich:
        @hookimpl
        def enrich(self) -> Any:
            return {"employees": "a lot"}

    class UnknownField:
        @hookimpl
        def enrich(self) -> Any:
            return {"headcount": 5}

    h = leadrouter(Bad(), NaN(), BadEnrich(), UnknownField())
    result = h.evaluate(make_lead())
    assert result.contributions() == []
    details = " | ".join(s.detail for s in result.plugin_steps())
    assert "not a Contribution" in details
    assert "returned invalid fields" in details and "unknown lead field 'headcount'" in details


def test_slow_async_and_sync_hooks_are_cut_at_their_budget(leadrouter: Any) -> None:
    class SlowAsync:
        @hookimpl
        async def score(self) -> Contribution:
            await asyncio.sleep(5)
            return Contribution(rule="never", group="fit", points=1)

    class SlowSync:
        @hookimpl
        def enrich(self) -> dict[str, Any]:
            time.sleep(0.08)
            return {"industry": "Late"}

    class FastAsync:
        @hookimpl
        async def score(self) -> Contribution:
            await asyncio.sleep(0)
            return Contribution(rule="fast", group="bant", points=3)

    h = leadrouter(SlowAsync(), SlowSync(), FastAsync(), budget=0.05)
    start = time.perf_counter()
    result = h.evaluate(make_lead())
    assert time.perf_counter() - start < 1.0
    assert [c.rule for c in result.contributions()] == ["fast"]
    assert result.lead.industry is None  # the late enrichment was discarded
    details = [s.detail for s in result.plugin_steps()]
    assert any(d.startswith("score ran past its 50 ms budget") for d in details), details
    assert any(d.startswith("enrich took") and "past its 50 ms budget" in d for d in details)


def test_the_breaker_opens_after_repeated_failures_and_closes_after_a_good_trial() -> None:
    clock = FakeClock()
    flaky = Flaky()
    h = Harness(flaky, breaker_threshold=3, breaker_cooldown=30, clock=clock)
    for _ in range(3):
        h.evaluate(make_lead())
    assert flaky.calls == 3
    result = h.evaluate(make_lead())  # open: not called, the explanation says so
    assert flaky.calls == 3
    (step,) = result.plugin_steps()
    assert "switched off after repeated failures" in step.detail
    assert h.host.counts[("flaky", "score", "skipped")] == 1
    assert {i.name: i.breakers for i in h.host.plugins()}["flaky"] == {"score": "open"}

    clock.now += 31  # cool-down over: one trial call, still failing → open again
    h.evaluate(make_lead())
    assert flaky.calls == 4
    h.evaluate(make_lead())
    assert flaky.calls == 4

    clock.now += 31
    flaky.failing = False  # the service behind it is back: the trial succeeds, closed
    result = h.evaluate(make_lead())
    assert [c.rule for c in result.contributions()] == ["flaky.ok"]
    assert not result.plugin_steps()
    assert {i.name: i.breakers for i in h.host.plugins()}["flaky"] == {}
    h.evaluate(make_lead())
    assert flaky.calls == 6


def test_the_breaker_opening_is_explained() -> None:
    h = Harness(Flaky(), breaker_threshold=2, clock=FakeClock())
    h.evaluate(make_lead())
    (step,) = h.evaluate(make_lead()).plugin_steps()
    assert "switched off for 30 s after 2 consecutive failures" in step.detail


# -- enrich and route ------------------------------------------------------------------------


class Enricher:
    @hookimpl
    async def enrich(self, lead: Lead) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"employees": "1,500", "industry": "Software", "company": "Ignored Inc",
                "attributes": {"source_db": "test", "plan": "ignored"}}


def test_enrich_fills_only_missing_fields(leadrouter: Any) -> None:
    h = leadrouter(Enricher())
    result = h.evaluate(make_lead(attributes={"plan": "pro"}))
    lead = result.lead
    assert (lead.employees, lead.industry, lead.company) == (1500, "Software", "Acme Corp")
    assert lead.attributes == {"plan": "pro", "source_db": "test"}
    assert "fit.big" in result.matched  # scored on the enriched lead
    (step,) = result.plugin_steps()
    assert step.outcome == "enriched"
    assert step.detail == "enrich filled employees, industry, attributes.source_db"


class Router:
    def __init__(self, override: RouteOverride | None) -> None:
        self.override = override
        self.seen: list[Any] = []

    @hookimpl
    def route(self, decision: Any) -> RouteOverride | None:
        self.seen.append(decision)
        return self.override


def test_route_override_first_result_wins_and_unknown_targets_are_refused(
        leadrouter: Any) -> None:
    keep = Router(None)
    to_pool = Router(RouteOverride(pool="main", reason="VIP domain"))
    bad = Router(RouteOverride(owner="nobody"))
    # pluggy order: the most recently registered is asked first
    h = leadrouter(to_pool, keep, bad)
    result = h.evaluate(make_lead())
    assert (result.route_kind, result.route_target, result.route_rule) == \
        ("pool", "main", "plugin:plugin0")
    assert result.route_reason == "VIP domain"
    assert keep.seen[0].kind == "queue" and keep.seen[0].target == "inbox"
    steps = result.plugin_steps()
    assert "unknown rep 'nobody'" in steps[0].detail
    assert steps[1].outcome == "pool:main"
    assert "the rules chose queue:inbox" in steps[1].detail
    with pytest.raises(ValueError, match="exactly one"):
        RouteOverride(pool="a", queue="b")


def test_make_event_and_deliver(leadrouter: Any, make_event: Any) -> None:
    got = []

    class Sink:
        @hookimpl
        async def on_event(self, event: Any) -> None:
            got.append(event)

    h = leadrouter(Sink())
    h.deliver(make_event("lead.accepted", owner="r1"))
    assert got[0].type == "lead.accepted" and got[0].data == {"owner": "r1"}
