"""The Slack plugin against a local Slack Web API (tests/_slack.py: real HTTP, chat.postMessage's
documented auth, body fields, Block Kit limits, ``ok: false`` errors and 429 + Retry-After):
Block Kit messages to the rep or the pool's channel with the signed links as buttons, rate
limits retried, configuration errors dead-lettered naming what to fix, and Slack's request
signature verified for interactive buttons."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
import urllib.parse
from typing import Any

import pytest
from _slack import Slack
from leadrouter_sdk import PermanentDeliveryError, PluginDisabled
from leadrouter_slack import PermanentError, RetryableError, SlackPlugin
from leadrouter_slack.interactions import BadRequest, clicked, sign, verify, wsgi_app

TOKEN = "xoxb-test-token"
DUE = dt.datetime(2024, 5, 1, 13, 0, tzinfo=dt.UTC)
LINKS = {a: f"https://lr.example/v1/links/{a}?t=tok{a}" for a in ("accept", "contacted", "reject")}
DECISION = {"lead": {"first_name": "Ann", "last_name": "Lee", "email": "ann@acme-corp.example",
                     "company": "Acme <Corp>", "title": "CTO", "employees": 1200},
            "score": {"total": 87, "grade": "A"}, "status": "mql",
            "explanation": [{"stage": "territory", "outcome": "na", "rule": "na",
                             "detail": "country US"},
                            {"stage": "assignment", "outcome": "alice",
                             "detail": "round robin in na-enterprise"}]}


@pytest.fixture
def slack() -> Any:
    api = Slack(TOKEN, users={"U0ALICE", "U0BOB"}, channels={"C0POOL", "C0ALL"},
                outside={"C0PRIVATE"})
    with api.api:
        yield api


def _plugin(api: Slack, **kw: Any) -> SlackPlugin:
    kw.setdefault("users", {"alice": "U0ALICE", "bob": "U0BOB", "gone": "U0GONE"})
    kw.setdefault("channels", {"na-enterprise": "C0POOL", "private": "C0PRIVATE"})
    kw.setdefault("signing_secret", "")
    return SlackPlugin(kw.pop("token", TOKEN), base_url=api.url, timeout=2, **kw)


def _event(make_event: Any, type: str = "lead.assigned", **data: Any) -> Any:
    data.setdefault("owner", "alice")
    data.setdefault("pool", "na-enterprise")
    return make_event(type, lead_id=data.pop("lead_id", "ld_1"), id=data.pop("id", "1-0"),
                      due_at=DUE, decision=DECISION, **data)


def test_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("TOKEN", "USERS", "CHANNELS", "CHANNEL", "SIGNING_SECRET", "EVENTS"):
        monkeypatch.delenv(f"LEADROUTER_SLACK_{var}", raising=False)
    with pytest.raises(PluginDisabled, match="LEADROUTER_SLACK_TOKEN"):
        SlackPlugin()
    monkeypatch.setenv("LEADROUTER_SLACK_TOKEN", TOKEN)
    with pytest.raises(PluginDisabled, match="LEADROUTER_SLACK_USERS"):
        SlackPlugin()
    monkeypatch.setenv("LEADROUTER_SLACK_USERS", "alice=U0ALICE, bob=U0BOB")
    monkeypatch.setenv("LEADROUTER_SLACK_EVENTS", "lead.assigned")
    plugin = SlackPlugin()
    assert plugin.users == {"alice": "U0ALICE", "bob": "U0BOB"}
    assert plugin.events == {"lead.assigned"} and plugin.base_url == "https://slack.com/api"


def test_assignment_is_a_block_kit_dm_with_the_signed_links(
        slack: Slack, leadrouter: Any, make_event: Any) -> None:
    h = leadrouter(_plugin(slack))
    h.deliver(_event(make_event, links=LINKS, expires_at="2024-05-01T14:00:00+00:00"))
    (request,) = slack.api.calls("POST", "/api/chat.postMessage", status=200)
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"].startswith("application/json")
    body = request.json()
    assert body["channel"] == "U0ALICE"  # the rep's own user id: a DM from the app
    assert body["text"] == ("New lead for you: Ann Lee (lead ld_1), due 2024-05-01 13:00 UTC")
    kinds = [b["type"] for b in body["blocks"]]
    assert kinds == ["header", "section", "section", "context", "actions"]
    section = body["blocks"][1]
    assert "*Ann Lee*" in section["text"]["text"] and "Score 87 (A)" in section["text"]["text"]
    assert {"type": "mrkdwn", "text": "*Company*\nAcme &lt;Corp&gt;"} in section["fields"]
    assert "round robin in na-enterprise" in body["blocks"][2]["text"]["text"]
    due = body["blocks"][3]["elements"][0]["text"]
    assert f"<!date^{int(DUE.timestamp())}^" in due and "2024-05-01 13:00 UTC>" in due
    buttons = body["blocks"][4]["elements"]
    assert [(b["action_id"], b["url"], b.get("style")) for b in buttons] == [
        ("leadrouter_accept", LINKS["accept"], "primary"),
        ("leadrouter_contacted", LINKS["contacted"], None),
        ("leadrouter_reject", LINKS["reject"], "danger")]
    assert "ann@acme-corp.example" not in request.body.decode()  # the email is not shown


def test_pool_channel_default_channel_and_no_links(slack: Slack, make_event: Any) -> None:
    plugin = _plugin(slack, channel="C0ALL")
    asyncio.run(plugin.on_event(event=_event(make_event, owner="carol")))
    asyncio.run(plugin.on_event(event=_event(make_event, id="2-0", owner="dave", pool="other")))
    asyncio.run(plugin.on_event(event=_event(make_event, "lead.queued", id="3-0")))  # not sent
    first, second = slack.messages
    assert (first["channel"], second["channel"]) == ("C0POOL", "C0ALL")
    assert all(b["type"] != "actions" for b in first["blocks"])  # no links → no buttons


def test_warning_and_breach_messages(slack: Slack, make_event: Any) -> None:
    plugin = _plugin(slack)
    asyncio.run(plugin.on_event(event=_event(make_event, "sla.warning", minutes_left=10,
                                             links=LINKS)))
    asyncio.run(plugin.on_event(event=_event(make_event, "lead.breached", id="2-0")))
    warning, breach = slack.messages
    assert warning["blocks"][0]["text"]["text"] == "Lead due soon"
    assert "(10 min left)" in warning["blocks"][3]["elements"][0]["text"]
    assert breach["text"].startswith("Lead SLA breached: Ann Lee")


def test_interactive_buttons_when_a_signing_secret_is_set(slack: Slack, make_event: Any) -> None:
    plugin = _plugin(slack, signing_secret="8f742231b10e8888abcd99yyyzzz85a5")
    asyncio.run(plugin.on_event(event=_event(make_event, links=LINKS)))
    (message,) = slack.messages
    accept, contacted, reject = message["blocks"][-1]["elements"]
    assert (accept["value"], contacted["value"]) == (LINKS["accept"], LINKS["contacted"])
    assert "url" not in accept and "url" not in contacted
    assert reject["url"] == LINKS["reject"] and "value" not in reject  # a reason is chosen
    # on the link's page


def test_rate_limits_are_retried(slack: Slack, leadrouter: Any, make_event: Any) -> None:
    from router.plugins.host import DeliveryFailed

    plugin = _plugin(slack, inline_wait=1.5)
    h = leadrouter(plugin)
    slack.rate_limit(1, retry_after=1)
    h.deliver(_event(make_event))  # a short Retry-After is waited out within the delivery
    first, second = slack.api.calls("POST", "/api/chat.postMessage")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.95
    slack.rate_limit(1, retry_after=30)  # a long one: retried later through the outbox
    with pytest.raises(DeliveryFailed, match="HTTP 429"):
        h.deliver(_event(make_event, id="2-0"))
    seen = len(slack.api.requests)
    with pytest.raises(DeliveryFailed, match="asked to wait"):  # fails fast, no call
        h.deliver(_event(make_event, id="3-0"))
    assert len(slack.api.requests) == seen
    assert len(slack.messages) == 1


def test_rate_limits_hold_with_several_deliveries_in_flight(slack: Slack,
                                                           make_event: Any) -> None:
    """The plugin declares ``sink_concurrency``: overlapping calls share one Retry-After."""
    plugin = _plugin(slack, inline_wait=1.5)
    assert SlackPlugin.sink_concurrency > 1

    async def together(ids: list[str]) -> list[BaseException | None]:
        return await asyncio.gather(*(plugin.on_event(event=_event(make_event, id=i))
                                      for i in ids), return_exceptions=True)

    slack.rate_limit(3, retry_after=1)  # short: each call waits it out once, then posts
    assert asyncio.run(together(["1-0", "2-0", "3-0"])) == [None, None, None]
    assert len(slack.messages) == 3 and len(slack.api.requests) == 6
    slack.rate_limit(3, retry_after=30)  # long: every call in flight fails...
    results = asyncio.run(together(["4-0", "5-0", "6-0"]))
    assert all(isinstance(r, RetryableError) and "HTTP 429" in str(r) for r in results)
    seen = len(slack.api.requests)
    results = asyncio.run(together(["7-0", "8-0", "9-0"]))  # ...and so does every new one,
    assert all(isinstance(r, RetryableError) and "asked to wait" in str(r) for r in results)
    assert len(slack.api.requests) == seen  # without calling Slack
    assert len(slack.messages) == 3


def test_outage_and_server_errors_are_retried(slack: Slack, make_event: Any) -> None:
    plugin = _plugin(slack)
    slack.api.fail_next(1, 503, {}, {"ok": False, "error": "service_unavailable"})
    with pytest.raises(RetryableError, match="HTTP 503"):
        asyncio.run(plugin.on_event(event=_event(make_event)))
    slack.api.fail_next(1, 200, {}, {"ok": False, "error": "internal_error"})
    with pytest.raises(RetryableError, match="internal_error"):
        asyncio.run(plugin.on_event(event=_event(make_event)))
    slack.api.stop()
    with pytest.raises(RetryableError, match="ConnectError"):
        asyncio.run(plugin.on_event(event=_event(make_event)))
    slack.api.start()
    asyncio.run(plugin.on_event(event=_event(make_event)))
    assert len(slack.messages) == 1


@pytest.mark.parametrize(("kw", "data", "error", "fix"), [
    ({}, {"owner": "gone"}, "channel_not_found", "LEADROUTER_SLACK_USERS"),
    ({}, {"owner": "zed", "pool": "private"}, "not_in_channel", "invite the app to C0PRIVATE"),
    ({"token": "xoxb-revoked"}, {}, "invalid_auth", "check LEADROUTER_SLACK_TOKEN"),
    ({}, {"owner": "zed", "pool": "nowhere"}, "no Slack user id", "add `zed=U...`"),
])
def test_configuration_errors_are_permanent(
        slack: Slack, make_event: Any, caplog: pytest.LogCaptureFixture, kw: dict[str, Any],
        data: dict[str, Any], error: str, fix: str) -> None:
    caplog.set_level(logging.INFO, "leadrouter.plugins.slack")
    plugin = _plugin(slack, **kw)
    with pytest.raises(PermanentError) as info:
        asyncio.run(plugin.on_event(event=_event(make_event, **data)))
    assert error in str(info.value) and fix in str(info.value)
    assert isinstance(info.value, PermanentDeliveryError)  # dead-lettered at once
    assert "ld_1" in caplog.text and "acme-corp" not in caplog.text and "Ann" not in caplog.text


def test_missing_scope_names_the_scope(make_event: Any) -> None:
    api = Slack(TOKEN, users={"U0ALICE"}, scoped=False)
    with api.api, pytest.raises(PermanentError, match="add the chat:write scope"):
        asyncio.run(_plugin(api).on_event(event=_event(make_event)))


def _click(url: str, action: str = "leadrouter_accept", reply: str | None = None) -> bytes:
    payload = {"type": "block_actions", "user": {"id": "U0ALICE"}, "response_url": reply,
               "actions": [{"type": "button", "action_id": action, "value": url,
                            "block_id": "leadrouter_actions", "action_ts": "1.2"}]}
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def test_slack_request_signature() -> None:
    secret, now = "8f742231b10e8888abcd99yyyzzz85a5", time.time()
    body = _click(LINKS["accept"])
    ts = str(int(now))
    good = sign(secret, ts, body)
    assert good.startswith("v0=") and len(good) == 67
    verify(secret, ts, good, body, now=now)
    verify(secret, ts, good, body, now=now + 299)  # within the 5-minute window
    for args, why in [((secret, ts, good, body + b"x"), "mismatch"),
                      (("other", ts, good, body), "mismatch"),
                      ((secret, str(int(now) - 301), sign(secret, str(int(now) - 301), body),
                        body), "5 minutes"),
                      ((secret, None, good, body), "missing"),
                      ((secret, "soon", good, body), "Unix time"),
                      (("", ts, good, body), "LEADROUTER_SLACK_SIGNING_SECRET")]:
        with pytest.raises(BadRequest, match=why):
            verify(*args, now=now)  # type: ignore[arg-type]
    click = clicked(body)
    assert (click.action, click.url, click.slack_user) == ("accept", LINKS["accept"], "U0ALICE")
    with pytest.raises(BadRequest):
        clicked(_click(LINKS["accept"], action="somebody_else"))
    with pytest.raises(BadRequest):
        clicked(b"payload=not-json")


def test_interactivity_endpoint_performs_the_link_once(make_event: Any) -> None:
    """wsgi_app under a real WSGI server: a signed click POSTs the signed link (here a local
    stand-in answering like the link pages: 200 once, then 410) and replies to the clicker
    through response_url; a forged or stale request does nothing."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    import httpx
    from _crm import FakeApi

    used: list[str] = []

    def links(r: Any) -> Any:
        if r.path.startswith("/a/"):
            used.append(r.path)
            return (200 if used.count(r.path) == 1 else 410), {}, None
        return 200, {}, {"ok": True}  # the response_url

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    secret = "8f742231b10e8888abcd99yyyzzz85a5"
    with FakeApi(links) as site:
        server = make_server("127.0.0.1", 0, wsgi_app(secret), handler_class=Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}/slack/interactions"
        body = _click(f"{site.url}/a/tok-accept", reply=f"{site.url}/reply")

        def post(payload: bytes, ts: int | None = None, key: str = secret) -> int:
            stamp = str(ts or int(time.time()))
            return httpx.post(url, content=payload, headers={
                "content-type": "application/x-www-form-urlencoded",
                "x-slack-request-timestamp": stamp,
                "x-slack-signature": sign(key, stamp, payload)}).status_code

        try:
            assert post(body, key="forged") == 401
            assert post(body, ts=int(time.time()) - 600) == 401
            assert used == []  # nothing was done for them
            assert post(body) == 200
            assert post(body) == 200  # Slack retried, or a second click
        finally:
            server.shutdown()
        replies = [r.json() for r in site.calls("POST", "/reply")]
    assert used == ["/a/tok-accept", "/a/tok-accept"]
    assert [r["text"] for r in replies] == [
        "Accepted: the lead is yours.",
        f"Could not accept this lead (already used, expired, or no longer yours): open "
        f"{site.url}/a/tok-accept for details."]
    assert all(r["response_type"] == "ephemeral" for r in replies)
