"""The rules service: which engine decides (the `engine` setting), and what it loads.

Engines other than the compiled one are found by entry point (group `leadrouter.engines`); the
core never imports them. The durable-rules engine (`leadrouter-durable`) must decide exactly as
the compiled one: the real service (HTTP, real Valkey) runs twice over the shipped ruleset, once
per engine, with identical decisions for the same leads. Those tests are skipped, with the
reason, where durable-rules cannot be imported (Python >= 3.13, or `leadrouter-durable` not
installed); CI installs it (`uv sync`, dev group) and fails them if it is missing (CI=true).
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from _ci import needs, require_module
from _service import ThreadServer, lead

from router.app.application import create_app
from router.engine import ENTRY_POINT_GROUP, compiled_evaluator
from router.engine.errors import RulesetError
from router.intake.config import IntakeConfig
from router.plugins.host import PluginHost
from router.services import rules as rules_service
from router.services.rules import RulesManager, find_backend
from router.settings import Settings

RULES = Path(__file__).resolve().parents[2] / "rules"


def _durable_unavailable() -> str | None:
    try:
        from leadrouter_durable import durable_unavailable
    except ImportError as exc:
        return f"leadrouter-durable is not installed ({exc})"
    return durable_unavailable()


_MISSING = _durable_unavailable()
# skipped where durable-rules is missing, failed in CI (CI=true; tests/_ci.py)
needs_durable = needs(None if _MISSING is None else f"durable-rules unavailable: {_MISSING}")

LEADS = [
    lead(email="cro@bigcorp.example", title="Chief Revenue Officer", employees=5000,
         country="US", state="CA", budget=150000, timeline_days=20),
    lead(email="someone@gmail.com", title="Student", employees=3, country="DE"),
    lead(email="x@mailinator.com", title="VP", employees=800, country="GB"),
    lead(email="ops@acme.example", title="Head of IT", employees=250, country="AU",
         attributes={"plan": "trial"}),
]


def _decisions(redis_url: str, engine: str) -> list[dict[str, Any]]:
    settings = Settings(redis_url=redis_url, rules_dir=str(RULES), reload_poll_seconds=0,
                        engine=engine)  # type: ignore[arg-type]
    app = create_app(settings, plugins=PluginHost())  # no plugins: the engines alone
    assert app.state.services.rules.engine == engine
    out = []
    server = ThreadServer(app).start()
    try:
        with server.client() as client:
            assert client.get("/v1/rules").json()["engine"] == engine
            assert client.get("/v1/status").json()["rules"]["engine"] == engine
            for body in LEADS:
                response = client.post("/v1/rules/evaluate", json=body)
                assert response.status_code == 200, response.text
                out.append(response.json()["evaluation"])
    finally:
        server.stop()
    return out


@needs_durable
def test_service_decides_the_same_on_both_engines(redis_url: str) -> None:
    compiled = _decisions(redis_url, "compiled")
    durable = _decisions(redis_url, "durable")
    assert [d["status"] for d in compiled] == [d["status"] for d in durable]
    assert len({d["status"] for d in compiled}) >= 2
    assert compiled == durable


@needs_durable
def test_a_ruleset_durable_cannot_run_is_rejected(tmp_path: Path) -> None:
    # A condition too large for one durable-rules rule (31 and/or slots): fine when compiled.
    big = " and ".join(f"(employees > {i} or (budget < {i} and employees == budget))"
                       for i in range(9))
    (tmp_path / "routing.yaml").write_text(
        f'territories:\n  - {{id: huge, when: "{big}"}}\n')
    manager = RulesManager(tmp_path, require_tests=False, engine="durable")
    with pytest.raises(RulesetError, match="engine durable"):
        manager.load_initial()
    assert RulesManager(tmp_path, require_tests=False).load_initial().version


# -- finding engines ------------------------------------------------------------------------

def test_an_engine_no_installed_package_provides_stops_the_start_up_saying_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "routing.yaml").write_text('territories:\n  - {id: all, when: "true"}\n')
    manager = RulesManager(tmp_path, require_tests=False, engine="drools")
    with pytest.raises(RulesetError) as caught:
        manager.load_initial()
    text = str(caught.value)
    assert "engine drools: no installed package provides the rule engine `drools`" in text
    assert f"group `{ENTRY_POINT_GROUP}`" in text and "install the package that provides it" in text
    assert text.rstrip().endswith("or set LEADROUTER_ENGINE=compiled")
    assert not manager.loaded
    # an engine this project ships as its own package is named, with how to install it
    monkeypatch.setitem(rules_service._PACKAGES, "drools", "leadrouter-drools")
    with pytest.raises(RulesetError, match=r"install the `leadrouter-drools` package "
                                           r"\(pip install leadrouter-drools"):
        RulesManager(tmp_path, require_tests=False, engine="drools").load_initial()
    assert rules_service._PACKAGES["durable"] == "leadrouter-durable"
    # the compiled engine needs no package and is never looked up
    assert find_backend("compiled") is compiled_evaluator
    assert RulesManager(tmp_path, require_tests=False).load_initial().version


def test_the_first_load_logs_the_engine_and_version(tmp_path: Path) -> None:
    (tmp_path / "routing.yaml").write_text("territories:\n  - {id: all, when: 'true'}\n")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("leadrouter.rules")
    logger.addHandler(handler)
    # setLevel, not `logger.level =`: it clears the logger's isEnabledFor cache, which an
    # earlier test's log.info at the default level left saying INFO is off
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        ruleset = RulesManager(tmp_path, require_tests=False).load_initial()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    [record] = [r for r in records if r.getMessage().startswith("rules loaded")]
    assert record.getMessage() == (f"rules loaded from {tmp_path}: version "
                                   f"{ruleset.version[:12]}, engine compiled")
    assert record.engine == "compiled"  # type: ignore[attr-defined]


def test_durable_registers_itself_by_entry_point() -> None:
    durable = require_module("leadrouter_durable", reason="leadrouter-durable is not installed")
    points = entry_points(group=ENTRY_POINT_GROUP, name="durable")
    assert [p.value for p in points] == ["leadrouter_durable:durable_evaluator"]
    assert find_backend("durable") is durable.durable_evaluator


def test_the_service_loads_the_intake_sections_with_the_rules(tmp_path: Path) -> None:
    ruleset = RulesManager(RULES).load_initial()
    assert isinstance(ruleset.intake, IntakeConfig) and ruleset.intake.forms
    # a mistake in intake.yaml rejects the whole directory, with where and how to fix it
    (tmp_path / "routing.yaml").write_text('territories:\n  - {id: all, when: "true"}\n')
    (tmp_path / "intake.yaml").write_text("forms:\n  contact:\n    thank_yu: x\n")
    with pytest.raises(RulesetError) as caught:
        RulesManager(tmp_path, require_tests=False).load_initial()
    assert f"{tmp_path / 'intake.yaml'}:2:3: contact: unknown key `thank_yu` — did you mean " \
           "`thank_you`?" in str(caught.value)
