"""webhook: Standard Webhooks signatures, request format, failures, against a real receiver."""

from __future__ import annotations

import time
from typing import Any

import pytest
from leadrouter_sdk import PluginDisabled
from leadrouter_webhook import WebhookError, WebhookPlugin, sign, verify
from leadrouter_webhook.receiver import Receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_signature_matches_the_spec_test_vector() -> None:
    # the example of the Standard Webhooks specification
    assert sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                b'{"test": 2432232314}') == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_verify() -> None:
    body, now = b'{"a":1}', 1_700_000_000
    headers = {"Webhook-Id": "m1", "Webhook-Timestamp": str(now),
               "Webhook-Signature": "v1,bogus " + sign(SECRET, "m1", now, body)}
    assert verify(SECRET, headers, body, now=now)
    assert not verify(SECRET, headers, body + b" ", now=now)
    assert not verify(SECRET, headers, body, now=now + 301)  # too old
    assert not verify("whsec_" + "QUJD", headers, body, now=now)


def test_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("URLS", "SECRET", "EVENTS", "TIMEOUT"):
        monkeypatch.delenv(f"LEADROUTER_WEBHOOK_{var}", raising=False)
    with pytest.raises(PluginDisabled, match="LEADROUTER_WEBHOOK_URLS"):
        WebhookPlugin()
    monkeypatch.setenv("LEADROUTER_WEBHOOK_URLS", "http://a.example/h, https://b.example/h")
    with pytest.raises(PluginDisabled, match="LEADROUTER_WEBHOOK_SECRET"):
        WebhookPlugin()
    monkeypatch.setenv("LEADROUTER_WEBHOOK_SECRET", f"{SECRET},plain-secret")
    monkeypatch.setenv("LEADROUTER_WEBHOOK_EVENTS", "lead.assigned")
    plugin = WebhookPlugin()
    assert plugin.urls == ["http://a.example/h", "https://b.example/h"]
    assert plugin.secrets == [SECRET, "plain-secret"]
    assert plugin.events == {"lead.assigned"}
    with pytest.raises(ValueError, match="must start with http"):
        WebhookPlugin(["ftp://x"], SECRET)


def test_delivers_signed_json(leadrouter: Any, make_event: Any) -> None:
    with Receiver(SECRET) as receiver:
        h = leadrouter(WebhookPlugin([receiver.url], SECRET))
        h.deliver(make_event("lead.assigned", id="1714564800000-3", lead_id="ld_1",
                             owner="alice", decision={"status": "sql"}))
        (got,) = receiver.wait_for(1)
    assert got.id == "1714564800000-3"
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60
    assert got.json() == {"type": "lead.assigned", "timestamp": "2024-05-01T12:00:00+00:00",
                          "data": {"lead_id": "ld_1", "owner": "alice",
                                   "decision": {"status": "sql"}}}


def test_failures_raise_so_the_outbox_retries(leadrouter: Any, make_event: Any) -> None:
    from router.plugins.host import DeliveryFailed

    with Receiver(SECRET) as receiver:
        h = leadrouter(WebhookPlugin([receiver.url], SECRET, timeout=1))
        receiver.fail_next(1)
        with pytest.raises(DeliveryFailed, match="HTTP 503"):
            h.deliver(make_event())
        h.deliver(make_event())  # the retry: same webhook-id
        assert [r.status for r in receiver.requests] == [503, 204]
        assert len({r.id for r in receiver.requests}) == 1
    with pytest.raises(DeliveryFailed, match="ConnectError"):
        h.deliver(make_event())  # receiver gone


def test_several_urls_a_retry_skips_those_that_took_it(make_event: Any) -> None:
    import asyncio

    with Receiver(SECRET) as good, Receiver(SECRET) as flaky:
        plugin = WebhookPlugin([good.url, flaky.url], SECRET, timeout=1)
        flaky.fail_next(1)
        with pytest.raises(WebhookError, match="HTTP 503"):
            asyncio.run(plugin.on_event(event=make_event()))
        asyncio.run(plugin.on_event(event=make_event()))
        assert len(good.requests) == 1 and len(flaky.delivered()) == 1


def test_event_filter(make_event: Any) -> None:
    import asyncio

    with Receiver(SECRET) as receiver:
        plugin = WebhookPlugin([receiver.url], SECRET, events=["lead.breached"])
        asyncio.run(plugin.on_event(event=make_event("lead.assigned")))
        asyncio.run(plugin.on_event(event=make_event("lead.breached")))
        assert [r.json()["type"] for r in receiver.wait_for(1)] == ["lead.breached"]
