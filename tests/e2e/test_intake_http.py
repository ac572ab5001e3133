"""Hostile intake input over real HTTP (tests/_hostile.py): form posts and signed HubSpot,
Segment and JSON-source requests to a live service never get a 5xx, and every refusal is an
RFC 9457 problem. The adapters' own property tests are in tests/intake/."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _hostile import json_value, names, text
from _intake import (
    SECRET_ENV,
    dumps,
    hubspot_headers,
    intake_rules,
    segment_headers,
    standard_headers,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, valkey_server: Any) -> Iterator[str]:
    import os

    import redis
    from _service import ADMIN_TOKEN, ThreadServer

    from router.app.application import create_app
    from router.settings import Settings

    os.environ.update(SECRET_ENV)
    url = f"redis://127.0.0.1:{valkey_server.port}/0"
    redis.Redis.from_url(url).flushdb()
    rules = intake_rules(tmp_path_factory.mktemp("prop") / "rules",
                         form_rate="100000/min", crm_rate="100000/min")
    server = ThreadServer(create_app(Settings(rules_dir=str(rules), redis_url=url,
                                              admin_token=ADMIN_TOKEN, reload_poll_seconds=0,
                                              key_prefix="lrprop:"))).start()
    try:
        yield server.url
    finally:
        server.stop()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(pairs=st.lists(st.tuples(names, text), max_size=20), doc=json_value)
def test_no_server_errors_over_http(live: str, pairs: list[tuple[str, str]], doc: Any) -> None:
    with httpx.Client(base_url=live, timeout=20) as client:
        form = urllib.parse.urlencode(pairs).encode()
        responses = [client.post("/v1/forms/contact", content=form, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})]
        body = dumps(doc)
        responses.append(client.post("/v1/sources/segment", content=body,
                                     headers=segment_headers(body)))
        responses.append(client.post("/v1/sources/hubspot", content=body,
                                     headers=hubspot_headers(f"{live}/v1/sources/hubspot", body)))
        responses.append(client.post("/v1/sources/crm", content=body,
                                     headers=standard_headers(body, f"m{hash(body)}")))
    for response in responses:
        assert response.status_code < 500, (response.request.url, response.text[:300])
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")

