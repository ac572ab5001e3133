"""The `engine` setting: the service decides on durable-rules exactly as on the compiled engine.

Runs the real service (HTTP, real Valkey) twice over the shipped ruleset, once per engine, and
requires identical decisions for the same leads. Skipped, with the reason, where durable-rules
cannot be imported (Python >= 3.13, or the `durable` extra not installed); CI installs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _service import ThreadServer, lead

from router.app.application import create_app
from router.engine.durable import durable_unavailable
from router.engine.errors import RulesetError
from router.plugins.host import PluginHost
from router.services.rules import RulesManager
from router.settings import Settings

RULES = Path(__file__).resolve().parents[2] / "rules"

pytestmark = pytest.mark.skipif(durable_unavailable() is not None,
                                reason=f"durable-rules unavailable: {durable_unavailable()}")

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
    assert app.state.ctx.rules.engine == engine
    out = []
    server = ThreadServer(app).start()
    try:
        with server.client() as client:
            for body in LEADS:
                response = client.post("/v1/rules/evaluate", json=body)
                assert response.status_code == 200, response.text
                out.append(response.json()["evaluation"])
    finally:
        server.stop()
    return out


def test_service_decides_the_same_on_both_engines(redis_url: str) -> None:
    compiled = _decisions(redis_url, "compiled")
    durable = _decisions(redis_url, "durable")
    assert [d["status"] for d in compiled] == [d["status"] for d in durable]
    assert len({d["status"] for d in compiled}) >= 2
    assert compiled == durable


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
