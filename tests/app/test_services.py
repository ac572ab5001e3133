"""router/app/services.py: the typed services handlers are given by dependency injection."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from router.app.application import create_app
from router.app.services import Services
from router.plugins.host import PluginHost
from router.services.clock import Clock
from router.services.rules import RulesManager
from router.settings import Settings
from router.state.errors import StateUnavailable

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"


def _app(**settings: Any) -> Litestar:
    return create_app(Settings(rules_dir=str(RULES), reload_poll_seconds=0, **settings),
                      plugins=PluginHost())


def test_every_handler_s_dependencies_are_resolved_one_after_another() -> None:
    app = _app()
    resolved = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler, model in route.route_handler_map.values():
                assert all(len(batch) == 1 for batch in model.dependency_batches), handler
                resolved[handler.handler_name] = {d.key for b in model.dependency_batches
                                                  for d in b}
    assert resolved["create_lead"] == {"leads", "keys"}  # settings: leads.settings
    assert resolved["post_source"] >= {"rules", "rate_limits", "replays", "leads"}


def test_what_needs_the_store_is_a_503_until_it_is_connected() -> None:
    services = Services(settings=Settings(), rules=RulesManager(RULES, require_tests=False),
                        plugins=PluginHost(), clock=Clock())
    for name in ("store", "leads", "engagement", "sla", "privacy", "directory", "keys",
                 "rate_limits", "replays", "lists", "audit", "links"):
        with pytest.raises(StateUnavailable, match="not connected"):
            getattr(services, name)
    providers = services.providers()
    assert set(providers) >= {"settings", "clock", "rules", "leads", "health", "watcher"}
    assert providers["settings"].dependency() is services.settings
    with pytest.raises(StateUnavailable):
        providers["leads"].dependency()


def test_a_request_before_the_store_is_connected_is_a_503_with_retry_after() -> None:
    client = TestClient(_app(retry_after_seconds=7))  # no lifespan: never connected
    response = client.post("/v1/leads", json={"email": "a@b.example"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.json()["type"].endswith("/state-unavailable")
    assert client.get("/livez").status_code == 200  # what needs no store still answers


def test_a_moved_clock_is_the_handlers_clock() -> None:
    import datetime as dt

    at = dt.datetime(2030, 1, 2, 3, 4, tzinfo=dt.UTC)
    clock = Clock(lambda: at)
    assert clock() == at and clock.ms() == int(at.timestamp() * 1000)
    assert Clock()().tzinfo is dt.UTC


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_api_asks_services_never_the_state_layer_or_an_untyped_context() -> None:
    for path in sorted((ROOT / "router" / "api").glob("*.py")):
        state = {m for m in _imports(path) if m == "router.state" or
                 m.startswith("router.state.")}
        # the one exception: StateUnavailable → 503 in the exception handler
        allowed = {"router.state.errors"} if path.name == "errors.py" else set()
        assert state <= allowed, f"{path.name} imports {sorted(state - allowed)}"
        assert "state.ctx" not in path.read_text(), path.name
