"""Slack and email notifications end to end: a lead posted to the real service → the outbox →
on_event → a Block Kit message in a local Slack Web API (tests/_slack.py) and an email in a real
SMTP server (tests/_smtp.py), both with the signed action links → the rep accepts by the
email's link → the SLA is met in /v1/sla/report. A channel outage never delays routing and
loses nothing (retried, then delivered; a refusal is dead-lettered, visible)."""

from __future__ import annotations

import datetime as dt
import re
import time
import zoneinfo
from pathlib import Path
from typing import Any

import httpx
import redis
from _ops import metric_value
from _service import ADMIN_TOKEN, ThreadServer, free_port, lead, write_rules
from _slack import Slack
from _smtp import Smtp
from leadrouter_email import EmailPlugin
from leadrouter_slack import SlackPlugin

from router.app.application import create_app
from router.plugins.host import PluginHost
from router.settings import Settings

TOKEN = "xoxb-e2e"
REPS = ("r1", "r2", "r3")
USERS = {rep: f"U0{rep.upper()}" for rep in REPS}
ADDRESSES = {rep: f"{rep}@sales.example" for rep in REPS}
ZONE = "Asia/Tokyo"
# the service rules' reps, r1..r3 in Tokyo (the others stay in UTC)
REPS_YAML = "reps:\n" + "".join(
    f"  - {{id: {rep}, timezone: {ZONE if rep in REPS else 'UTC'}, "
    f"working_hours: {{mon-sun: \"00:00-24:00\"}}}}\n"
    for rep in (*REPS, "w1", "w2", "w3", "c1", "c2", "owner1"))
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def _server(redis_url: str, rules: Path, plugins: dict[str, Any]) -> ThreadServer:
    host = PluginHost(event_budget=3.0, breaker_threshold=50, breaker_cooldown=0.3)
    for name, plugin in plugins.items():
        host.register(plugin, name)
    port = free_port()
    settings = Settings(redis_url=redis_url, admin_token=ADMIN_TOKEN, reload_poll_seconds=0,
                        rules_dir=str(rules), outbox_poll_seconds=0.02,
                        outbox_retry_seconds=0.05, outbox_retry_max_seconds=0.2,
                        action_secret="e2e-secret-" + "x" * 24,
                        public_url=f"http://127.0.0.1:{port}")
    return ThreadServer(create_app(settings, plugins=host), port=port).start()


def _channels(slack: Slack, smtp: Smtp) -> dict[str, Any]:
    return {"slack": SlackPlugin(TOKEN, users=USERS, base_url=slack.url, timeout=1),
            "email": EmailPlugin("127.0.0.1", port=smtp.port, security="none",
                                 sender="lr@sales.example", reps=ADDRESSES, timeout=1)}


def _counts(client: httpx.Client, channel: str) -> dict[str, float]:
    text = client.get("/metrics").text
    return {o: metric_value(text, "leadrouter_notifications_total", channel=channel, outcome=o)
            for o in ("delivered", "retried", "dead")}


def _wait(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s")
        time.sleep(0.01)


def test_lead_notified_in_slack_and_email_then_accepted_by_link(
        redis_url: str, tmp_path: Path) -> None:
    slack, smtp = Slack(TOKEN, users=set(USERS.values())), Smtp()
    rules = write_rules(tmp_path / "rules", {"reps.yaml": REPS_YAML})
    with slack.api, smtp:
        server = _server(redis_url, rules, _channels(slack, smtp))
        try:
            with server.client() as client:
                posted = time.monotonic()
                decision = client.post("/v1/leads", json=lead()).json()
                # generous deadline; on an idle machine both arrive within ~0.1 s
                _wait(lambda: slack.messages and smtp.messages)
                print(f"slack after {slack.messages[0]['received'] - posted:.3f}s, "
                      f"email after {smtp.received[0] - posted:.3f}s")
                owner = decision["assignment"]["owner"]
                (message,) = slack.messages
                (mail,) = smtp.messages
                plain = mail.get_body(("plain",)).get_content()
                accept = re.search(r"^Accept: (\S+)", plain, re.M)
                assert accept is not None, plain
                page = client.get(accept[1])
                assert page.status_code == 200 and "Accept this lead?" in page.text
                done = client.post(accept[1], data={})
                assert done.status_code == 200 and "within the SLA" in done.text
                again = client.post(accept[1], data={})  # single use
                assert "within the SLA" not in again.text
                report = client.get("/v1/sla/report", headers=AUTH).json()
        finally:
            server.stop()
    assert message["channel"] == USERS[owner]
    buttons = message["blocks"][-1]["elements"]
    # the same event gives every channel the same links: one use, whichever channel
    assert buttons[0]["url"] == accept[1]
    assert all(b["url"].startswith(f"{server.url}/a/") for b in buttons)
    assert mail["To"] == ADDRESSES[owner]
    due = dt.datetime.fromisoformat(decision["sla"]["due_at"]).astimezone(
        zoneinfo.ZoneInfo(ZONE))
    assert f"{due:%H:%M} JST ({ZONE})" in plain  # the due time in the rep's own zone
    assert accept[1].startswith(f"{server.url}/a/")
    assert report["total"]["accepted_in_time"] == 1 and report["total"]["handed_off"] == 1


def test_channel_outage_never_delays_routing_and_loses_nothing(
        redis_url: str, tmp_path: Path, redis_client: redis.Redis) -> None:
    slack, smtp = Slack(TOKEN, users=set(USERS.values())), Smtp()  # both down
    plugins = _channels(slack, smtp)
    plugins["slack-bad"] = SlackPlugin(TOKEN, users={"nobody": "U0NOBODY"}, base_url=slack.url)
    server = _server(redis_url, write_rules(tmp_path / "rules"), plugins)
    try:
        with server.client() as client:
            before = {c: _counts(client, c) for c in ("slack", "email")}
            decisions = [client.post("/v1/leads", json=lead(
                email=f"lead{i}@acme-corp.example")).json() for i in range(3)]
            assert all(d["assignment"]["owner"] in REPS for d in decisions)  # routed anyway

            def retried(c: str) -> float:
                return _counts(client, c)["retried"] - before[c]["retried"]
            _wait(lambda: retried("slack") >= 3 and retried("email") >= 3)
            slack.api.start()
            smtp.start()
            _wait(lambda: len(slack.messages) == 3 and len(smtp.messages) == 3)
            _wait(lambda: all(_counts(client, c)["delivered"] - before[c]["delivered"] == 3
                              for c in ("slack", "email")), timeout=5)
            after = {c: _counts(client, c) for c in ("slack", "email")}
    finally:
        server.stop()
        slack.api.stop()
        smtp.stop()
    assert sorted(m["channel"] for m in slack.messages) == sorted(
        USERS[d["assignment"]["owner"]] for d in decisions)
    assert sorted(m["To"] for m in smtp.messages) == sorted(
        ADDRESSES[d["assignment"]["owner"]] for d in decisions)
    assert all(after[c]["dead"] == before[c]["dead"] for c in after)
    dead = [f for _, f in redis_client.xrange("lr:{lr}:outbox:dead")
            if f[b"sink"] == b"sink:slack-bad"]
    assert len(dead) == 3 and all(b"to LEADROUTER_SLACK_USERS" in f[b"error"] for f in dead)
