"""router/observability/logs.py: phone numbers and emails never reach a log line, and the ids the
service makes (lead, outbox event, erasure, key and request ids) are never mistaken for them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis
from _service import AUTH, lead

from router.observability import logs

PHONES = ["+1 415 555 0100", "+1-415-555-0100", "(415) 555-0100", "415.555.0100",
          "+44 20 7946 0958", "+14155550100", "4155550100", "030 12345678", "555-0100"]


def _line(message: str, *args: object, **extra: Any) -> dict[str, Any]:
    record = logging.LogRecord("leadrouter.test", logging.INFO, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    line: dict[str, Any] = json.loads(logs.JsonFormatter().format(record))
    return line


@pytest.fixture
def captured(json_log: Callable[[str], io.StringIO]) -> io.StringIO:
    """What the service's own loggers write, as ``leadrouter serve`` formats it."""
    return json_log("leadrouter")


def test_ids_the_service_makes_are_logged_as_they_are(
        api: httpx.Client, outbox_sink: str, redis_client: redis.Redis,
        captured: io.StringIO) -> None:
    posted = api.post("/v1/leads", json=lead(phone="+1 415 555 0100"))
    assert posted.status_code == 201, posted.text
    lead_id, request_id = posted.json()["lead_id"], posted.headers["x-request-id"]
    event_id = redis_client.xrange(outbox_sink)[-1][0].decode()  # a stream id: 1796...-0
    key = api.post("/v1/admin/keys", json={"source": "*", "scopes": ["intake"]}, headers=AUTH)
    assert key.status_code == 201, key.text
    erased = api.delete(f"/v1/leads/{lead_id}", headers=AUTH)
    assert erased.status_code == 200, erased.text
    erasure = erased.json()
    # The service's own lines: "lead erased" carries the erasure id (a stream id too).
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    logged = {line["msg"]: line for line in lines}
    assert logged["lead erased"]["erasure"] == erasure["id"], lines
    assert logged["api key created"]["key_id"] == key.json()["id"], lines
    # The delivery worker's and the SLA worker's messages, with those ids.
    line = _line("outbox: %s did not take %s (attempt %d): %s", "webhook", event_id, 2,
                 "HTTP 503", event=event_id, erasure=erasure["id"], at=erasure["at"],
                 request=request_id)
    assert line["msg"] == f"outbox: webhook did not take {event_id} (attempt 2): HTTP 503"
    assert (line["event"], line["erasure"], line["at"], line["request"]) == \
        (event_id, erasure["id"], erasure["at"], request_id)
    line = _line("lead %s: SLA %s breached (owner %s) at %s", lead_id, "sql-2h", "ben",
                 erasure["at"])
    assert line["msg"] == f"lead {lead_id}: SLA sql-2h breached (owner ben) at {erasure['at']}"


@pytest.mark.parametrize("phone", PHONES)
def test_phone_numbers_are_masked_in_text_and_by_field(phone: str) -> None:
    line = _line("call %s, or jane.doe@bigco.example.", phone, note=f"cell: {phone}",
                 phone=phone, mobile_phone="n/a", lead={"phone": phone, "country": "US"})
    assert line["msg"] == "call [phone], or [email]."
    assert line["note"] == "cell: [phone]"
    assert line["phone"] == line["mobile_phone"] == "[phone]"
    assert line["lead"] == {"phone": "[phone]", "country": "US"}


def test_addresses_dates_and_versions_are_not_phone_numbers() -> None:
    text = "on 127.0.0.1:8080 since 2026-12-04 10:00:00, v0.1.0, pid 12345, 42 workers"
    assert _line(text)["msg"] == text


def test_libraries_log_json_warnings_and_no_info_chatter(tmp_path: Any) -> None:
    """litestar's default logging config put a plain-text INFO handler on the root logger, so
    every webhook a plugin sent added an `INFO - ... - httpx - ... HTTP Request` line to the
    JSON log. A worker process (app_from_env) logs only JSON, and libraries only from WARNING."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = (
        "import logging\n"
        "from router.app.application import app_from_env\n"
        "app_from_env()\n"
        "logging.getLogger('httpx').info('HTTP Request: POST http://127.0.0.1/hook')\n"
        "logging.getLogger('asyncio').warning('a library warning')\n"
        "logging.getLogger('leadrouter.test').warning('ours')\n")
    env = {**os.environ, "LEADROUTER_LOG_LEVEL": "info",
           "LEADROUTER_RULES_DIR": str(root / "rules"),
           "LEADROUTER_REDIS_URL": "redis://127.0.0.1:1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # every line is JSON
    others = [(x["logger"], x["msg"]) for x in lines if not x["logger"].startswith("leadrouter")]
    assert others == [("asyncio", "a library warning")]  # httpx's INFO line is not there
    assert ("leadrouter.test", "ours") in [(x["logger"], x["msg"]) for x in lines]
