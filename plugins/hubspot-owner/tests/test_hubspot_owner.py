"""hubspot-owner against a local HubSpot (tests/_crm.py: real HTTP, the documented CRM v3
request and response shapes, 400 for anything else): owner updates, the email search, the
follow-up task, retries on 429 (Retry-After) and 5xx, and permanent failures."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import pytest
from _crm import HubSpot
from leadrouter_hubspot_owner import HubSpotOwnerPlugin, PermanentError, contact_id_of
from leadrouter_sdk import PermanentDeliveryError, PluginDisabled

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
DUE = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC)


@pytest.fixture
def hubspot() -> Any:
    crm = HubSpot(TOKEN, owners={"111", "222"},
                  contacts={"501": "ann@acme-corp.example", "502": "bob@acme-corp.example"})
    with crm.api:
        yield crm


def _plugin(crm: HubSpot, **kw: Any) -> HubSpotOwnerPlugin:
    kw.setdefault("owners", {"alice": "111", "bob": "222", "carol": "999"})
    return HubSpotOwnerPlugin(TOKEN, base_url=crm.api.url, timeout=2, **kw)


def test_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("TOKEN", "OWNERS", "TASKS", "BASE_URL", "EVENTS"):
        monkeypatch.delenv(f"LEADROUTER_HUBSPOT_{var}", raising=False)
    with pytest.raises(PluginDisabled, match="LEADROUTER_HUBSPOT_TOKEN"):
        HubSpotOwnerPlugin()
    monkeypatch.setenv("LEADROUTER_HUBSPOT_TOKEN", TOKEN)
    with pytest.raises(PluginDisabled, match="LEADROUTER_HUBSPOT_OWNERS"):
        HubSpotOwnerPlugin()
    monkeypatch.setenv("LEADROUTER_HUBSPOT_OWNERS", "alice")
    with pytest.raises(ValueError, match="rep=owner_id"):
        HubSpotOwnerPlugin()
    monkeypatch.setenv("LEADROUTER_HUBSPOT_OWNERS", "alice=111, bob = 222")
    monkeypatch.setenv("LEADROUTER_HUBSPOT_TASKS", "true")
    plugin = HubSpotOwnerPlugin()
    assert plugin.owners == {"alice": "111", "bob": "222"}
    assert plugin.tasks and plugin.base_url == "https://api.hubapi.com"
    assert plugin.events == {"lead.assigned", "lead.reassigned"}


def test_contact_id_of() -> None:
    assert contact_id_of("hubspot:62515:501") == "501"
    assert contact_id_of("hubspot:62515:501", portal="62515") == "501"
    assert contact_id_of("hubspot:62515:501", portal="1") is None
    assert contact_id_of("crm-42") is None and contact_id_of(None) is None


def test_owner_by_contact_id_with_task(hubspot: HubSpot, leadrouter: Any,
                                       make_event: Any) -> None:
    h = leadrouter(_plugin(hubspot, tasks=True))
    h.deliver(make_event("lead.assigned", lead_id="ld_1", owner="alice", due_at=DUE,
                         external_id="hubspot:62515:501"))
    assert hubspot.contacts["501"]["hubspot_owner_id"] == "111"
    assert hubspot.api.calls("POST", "/crm/v3/objects/contacts/search") == []
    (patch,) = hubspot.api.calls("PATCH", "/crm/v3/objects/contacts/501")
    assert patch.json() == {"properties": {"hubspot_owner_id": "111"}}
    assert patch.headers["authorization"] == f"Bearer {TOKEN}"
    (task,) = hubspot.tasks
    assert task["properties"]["hs_timestamp"] == "2024-05-01T12:30:00.000Z"
    assert task["properties"]["hubspot_owner_id"] == "111"
    assert task["properties"]["hs_task_status"] == "NOT_STARTED"
    assert task["associations"] == [{"to": {"id": "501"}, "types": [
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}]}]


def test_search_by_email_from_the_event_alone(hubspot: HubSpot, leadrouter: Any,
                                              make_event: Any) -> None:
    h = leadrouter(_plugin(hubspot))
    h.deliver(make_event("lead.assigned", id="1-0", lead_id="ld_2", owner="alice",
                         email="bob@acme-corp.example"))
    (search,) = hubspot.api.calls("POST", "/crm/v3/objects/contacts/search")
    assert search.json()["filterGroups"] == [{"filters": [
        {"propertyName": "email", "operator": "EQ", "value": "bob@acme-corp.example"}]}]
    assert hubspot.contacts["502"]["hubspot_owner_id"] == "111"
    # a fresh plugin (another worker, a restart) needs nothing but the event
    h2 = leadrouter(_plugin(hubspot))
    h2.deliver(make_event("lead.reassigned", id="2-0", lead_id="ld_2", owner="bob",
                          email="bob@acme-corp.example", source="api"))
    assert hubspot.contacts["502"]["hubspot_owner_id"] == "222"
    assert len(hubspot.api.calls("POST", "/crm/v3/objects/contacts/search")) == 2
    assert hubspot.tasks == []  # tasks are off by default
    h2.deliver(make_event("lead.accepted", id="3-0", lead_id="ld_2", owner="bob"))
    assert len(hubspot.api.requests) == 4  # other event types are ignored


def test_429_retry_after_is_waited_inline(hubspot: HubSpot, leadrouter: Any,
                                          make_event: Any) -> None:
    h = leadrouter(_plugin(hubspot))
    hubspot.api.fail_next(1, 429, {"Retry-After": "1"}, {
        "status": "error", "message": "You have reached your secondly limit.",
        "errorType": "RATE_LIMIT", "correlationId": "x", "policyName": "SECONDLY"})
    h.deliver(make_event(lead_id="ld_3", owner="alice", external_id="hubspot:1:501"))
    first, second = hubspot.api.calls("PATCH", "/crm/v3/objects/contacts/501")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.95  # Retry-After honoured
    assert hubspot.contacts["501"]["hubspot_owner_id"] == "111"


def test_long_retry_after_and_5xx_go_back_to_the_outbox(hubspot: HubSpot, leadrouter: Any,
                                                        make_event: Any) -> None:
    from router.plugins.host import DeliveryFailed

    now = [1000.0]
    plugin = _plugin(hubspot, inline_wait=0.5, clock=lambda: now[0])
    h = leadrouter(plugin)
    event = make_event(lead_id="ld_4", owner="bob", external_id="hubspot:1:501")
    hubspot.api.fail_next(1, 429, {"Retry-After": "30"})
    with pytest.raises(DeliveryFailed, match="HTTP 429"):
        h.deliver(event)
    with pytest.raises(DeliveryFailed, match="retry in 30"):
        h.deliver(event)  # fails fast: HubSpot is not asked again before 30 s
    assert len(hubspot.api.requests) == 1
    now[0] += 31
    hubspot.api.fail_next(1, 503)
    with pytest.raises(DeliveryFailed, match="HTTP 503"):
        h.deliver(event)
    h.deliver(event)
    assert hubspot.contacts["501"]["hubspot_owner_id"] == "222"
    assert [r.status for r in hubspot.api.requests] == [429, 503, 200]
    counts = {k[2]: n for k, n in h.host.counts.items() if k[:2] == ("hubspot-owner",
                                                                       "on_event")}
    assert counts == {"raised": 3, "ok": 1}


def test_bad_mappings_are_permanent_and_name_what_to_fix(
        hubspot: HubSpot, make_event: Any, caplog: pytest.LogCaptureFixture) -> None:
    plugin = _plugin(hubspot)
    caplog.set_level(logging.INFO, "leadrouter.plugins.hubspot")

    def deliver(**data: Any) -> str:
        with pytest.raises(PermanentError) as info:
            asyncio.run(plugin.on_event(event=make_event(**data)))
        return str(info.value)

    assert "add `dave=<id>` to LEADROUTER_HUBSPOT_OWNERS" in deliver(
        id="1-0", lead_id="ld_1", owner="dave", external_id="hubspot:1:501")
    assert hubspot.api.requests == []
    text = deliver(id="2-0", lead_id="ld_2", owner="carol", email="ann@acme-corp.example")
    assert "hubspot_owner_id=999 (rep 'carol')" in text and "VALIDATION_ERROR" in text
    assert "does not exist" in deliver(id="3-0", lead_id="ld_3", owner="alice",
                                       external_id="hubspot:1:777")
    assert "no HubSpot contact has the email" in deliver(id="4-0", lead_id="ld_4",
                                                         owner="alice",
                                                         email="nobody@else.example")
    # the event carries no identifier (no lead came without both): nothing to retry for
    assert "neither an external id nor an email" in deliver(id="5-0", lead_id="ld_5",
                                                            owner="alice")
    assert issubclass(PermanentError, PermanentDeliveryError)  # the outbox dead-letters it
    assert "rep 'dave'" in caplog.text and "dead-lettered" in caplog.text
    assert "@" not in caplog.text  # no email in logs


def test_wrong_token_is_retried(hubspot: HubSpot, make_event: Any) -> None:
    from leadrouter_hubspot_owner import RetryableError

    plugin = HubSpotOwnerPlugin("pat-wrong", {"alice": "111"}, base_url=hubspot.api.url)
    with pytest.raises(RetryableError, match="LEADROUTER_HUBSPOT_TOKEN"):
        asyncio.run(plugin.on_event(event=make_event(owner="alice",
                                                     external_id="hubspot:1:501")))
