"""Schemathesis against the running service's OpenAPI document (``/schema``): generated
requests for every operation must get no 5xx and bodies that match the documented schemas.

Bounded for CI: a few examples per operation, no shrinking beyond the default, < 60 s.
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
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from router.app.application import create_app
from router.settings import Settings


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


def test_no_server_errors_and_schema_conformance(live_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{live_url}/schema/openapi.json")
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=4, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            case.call_and_validate(base_url=live_url, headers=headers,
                                   checks=[not_a_server_error, response_schema_conformance])

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:2000])
    assert operations > 20
    assert failures == [], "\n\n".join(failures)
