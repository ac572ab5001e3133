"""Schemathesis against the running service's OpenAPI document (``/schema/openapi.json``),
over real HTTP: every check (``--checks all``: no 5xx, documented status codes, content types
and headers, response bodies matching their schemas, ``Allow`` on 405, schema-valid requests
accepted, schema-violating ones refused ...) for generated requests to every operation.

The same configuration as a hand run (``schemathesis.toml`` at the repository root says where
a check does not fit this API and why). Bounded for CI: a few examples per operation, < 60 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import schemathesis
from _intake import SECRET_ENV, intake_rules
from _service import ADMIN_TOKEN, ThreadServer
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, from_schema
from schemathesis.engine.events import FatalError, NonFatalError, ScenarioFinished

from router.app.application import create_app
from router.settings import Settings

_AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
_EXAMPLES = 8  # per operation and phase: the whole run stays well under a minute


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory, valkey_server: Any) -> Iterator[str]:
    mp = pytest.MonkeyPatch()
    for name, value in SECRET_ENV.items():
        mp.setenv(name, value)
    url = f"redis://127.0.0.1:{valkey_server.port}/0"
    with redis.Redis.from_url(url) as admin:
        admin.flushdb()
    rules: Path = intake_rules(tmp_path_factory.mktemp("fuzz") / "rules",
                               form_rate="100000/min", crm_rate="100000/min")
    app = create_app(Settings(rules_dir=str(rules), redis_url=url, admin_token=ADMIN_TOKEN,
                              reload_poll_seconds=0, key_prefix="lrfuzz:"))
    server = ThreadServer(app).start()
    try:
        yield server.url
    finally:
        server.stop()
        mp.undo()


def _failures(events: Any) -> tuple[list[str], int]:
    """Every failed check and engine error of a run, and how many test cases ran."""
    failures: list[str] = []
    cases = 0
    for event in events:
        if isinstance(event, ScenarioFinished):
            cases += len(event.recorder.cases)
            for checks in event.recorder.checks.values():
                failures.extend(f"{event.recorder.label}: {c.name}: "
                                f"{c.failure_info.failure.title if c.failure_info else ''}\n"
                                f"{c.failure_info.code_sample if c.failure_info else ''}"
                                for c in checks if c.status == Status.FAILURE)
        elif isinstance(event, NonFatalError | FatalError):
            failures.append(f"{event.label if isinstance(event, NonFatalError) else ''}: "
                            f"{event.info.message if hasattr(event, 'info') else event}")
    return failures, cases


def test_every_operation_passes_every_check(live_url: str) -> None:
    """``schemathesis run --checks all``, through its Python API: the examples, coverage,
    fuzzing and stateful phases, with the configuration a hand run reads."""
    config = SchemathesisConfig.discover()  # ./schemathesis.toml
    project = config.projects.override
    project.checks.update(included_check_names=["all"])
    project.generation.update(max_examples=_EXAMPLES, deterministic=True, database="none")
    project.update(headers=_AUTH)
    schema = schemathesis.openapi.from_url(f"{live_url}/schema/openapi.json", config=config)
    assert len(list(schema.get_all_operations())) > 20
    failures, cases = _failures(from_schema(schema).execute())
    assert failures == [], "\n\n".join(f[:1500] for f in failures)
    assert cases > 500, cases  # the run did generate requests
