"""salesforce-owner against a local Salesforce (tests/_crm.py: real HTTP, the documented OAuth
token endpoint and REST v60.0 sobjects shapes, 400 for anything else): the client credentials
token cached and renewed after 401 INVALID_SESSION_ID, OwnerId by id and by an external id field,
the follow-up Task, retries and permanent failures."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import pytest
from _crm import Salesforce
from leadrouter_salesforce_owner import (
    PermanentError,
    RetryableError,
    SalesforceOwnerPlugin,
    lead_id_of,
)
from leadrouter_sdk import PermanentDeliveryError, PluginDisabled

LEAD_A, LEAD_B = "00Q5e00000AbCdEAAA", "00Q5e00000XyZzYAAA"
ALICE, BOB = "0055e000001AbCdAAA", "0055e000001XyZzAAA"
DUE = dt.datetime(2024, 5, 1, 23, 30, tzinfo=dt.UTC)


@pytest.fixture
def salesforce() -> Any:
    crm = Salesforce("3MVG9-client", "s3cr3t", users={ALICE, BOB},
                     leads={LEAD_A: {"Leadrouter_Id__c": "ld_ext_a"},
                            LEAD_B: {"Leadrouter_Id__c": "crm-42"}})
    with crm.api:
        yield crm


def _plugin(crm: Salesforce, secret: str = "s3cr3t", **kw: Any) -> SalesforceOwnerPlugin:
    kw.setdefault("owners", {"alice": ALICE, "bob": BOB, "carol": "0055e000009NoNoAAA"})
    return SalesforceOwnerPlugin(crm.api.url, "3MVG9-client", secret, timeout=2, **kw)


def test_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LOGIN_URL", "CLIENT_ID", "CLIENT_SECRET", "OWNERS", "TASKS", "API_VERSION",
                "EXTERNAL_ID_FIELD", "EVENTS"):
        monkeypatch.delenv(f"LEADROUTER_SALESFORCE_{var}", raising=False)
    with pytest.raises(PluginDisabled, match="LEADROUTER_SALESFORCE_LOGIN_URL"):
        SalesforceOwnerPlugin()
    monkeypatch.setenv("LEADROUTER_SALESFORCE_LOGIN_URL", "https://acme.my.salesforce.com/")
    monkeypatch.setenv("LEADROUTER_SALESFORCE_CLIENT_ID", "id")
    monkeypatch.setenv("LEADROUTER_SALESFORCE_CLIENT_SECRET", "secret")
    with pytest.raises(PluginDisabled, match="LEADROUTER_SALESFORCE_OWNERS"):
        SalesforceOwnerPlugin()
    monkeypatch.setenv("LEADROUTER_SALESFORCE_OWNERS", f"alice={ALICE}")
    monkeypatch.setenv("LEADROUTER_SALESFORCE_EXTERNAL_ID_FIELD", "bad field")
    with pytest.raises(ValueError, match="field API name"):
        SalesforceOwnerPlugin()
    monkeypatch.setenv("LEADROUTER_SALESFORCE_EXTERNAL_ID_FIELD", "Leadrouter_Id__c")
    monkeypatch.setenv("LEADROUTER_SALESFORCE_API_VERSION", "v61.0")
    plugin = SalesforceOwnerPlugin()
    assert plugin.login_url == "https://acme.my.salesforce.com"
    assert (plugin.api_version, plugin.external_id_field) == ("61.0", "Leadrouter_Id__c")
    assert plugin.owners == {"alice": ALICE} and not plugin.tasks


def test_lead_id_of() -> None:
    assert lead_id_of(f"salesforce:{LEAD_A}") == LEAD_A
    assert lead_id_of(LEAD_A[:15]) == LEAD_A[:15]
    assert lead_id_of("0035e00000AbCdEAAA") is None  # a Contact id, not a Lead
    assert lead_id_of("hubspot:1:2") is None and lead_id_of(None) is None


def test_owner_and_task_with_one_cached_token(salesforce: Salesforce, leadrouter: Any,
                                              make_event: Any) -> None:
    plugin = _plugin(salesforce, tasks=True)
    h = leadrouter(plugin)
    h.deliver(make_event("lead.assigned", id="1-0", lead_id="ld_1", owner="alice",
                         due_at=DUE, external_id=f"salesforce:{LEAD_A}"))
    h.deliver(make_event("lead.reassigned", id="2-0", lead_id="ld_1", owner="bob",
                         external_id=f"salesforce:{LEAD_A}"))
    (token,) = salesforce.api.calls("POST", "/services/oauth2/token")
    assert token.form() == {"grant_type": "client_credentials", "client_id": "3MVG9-client",
                            "client_secret": "s3cr3t"}
    assert token.headers["content-type"] == "application/x-www-form-urlencoded"
    patches = salesforce.api.calls("PATCH", f"/services/data/v60.0/sobjects/Lead/{LEAD_A}")
    assert [(r.json(), r.status) for r in patches] == [({"OwnerId": ALICE}, 204),
                                                       ({"OwnerId": BOB}, 204)]
    assert salesforce.leads[LEAD_A]["OwnerId"] == BOB
    (task,) = salesforce.tasks  # the reassignment carried no due_at
    assert task["WhoId"] == LEAD_A and task["OwnerId"] == ALICE
    assert task["ActivityDate"] == "2024-05-01" and task["IsReminderSet"] is True
    assert task["ReminderDateTime"] == "2024-05-01T23:30:00.000Z"
    assert plugin.token_fetches == 1


def test_expired_token_is_renewed_after_401(salesforce: Salesforce, leadrouter: Any,
                                            make_event: Any) -> None:
    plugin = _plugin(salesforce)
    h = leadrouter(plugin)
    event = make_event(lead_id="ld_1", owner="alice", external_id=LEAD_A)
    h.deliver(event)
    salesforce.revoke_tokens()
    h.deliver(make_event(id="2-0", lead_id="ld_1", owner="bob", external_id=LEAD_A))
    assert [r.status for r in salesforce.api.requests] == [200, 204, 401, 200, 204]
    auth = [r.headers["authorization"] for r in salesforce.api.calls("PATCH", "/services/")]
    assert auth[1] == auth[0] != auth[2]  # the 401 call used the old token, the retry a new
    assert plugin.token_fetches == 2 and salesforce.leads[LEAD_A]["OwnerId"] == BOB


def test_lead_found_by_external_id_field(salesforce: Salesforce, leadrouter: Any,
                                         make_event: Any) -> None:
    h = leadrouter(_plugin(salesforce, external_id_field="Leadrouter_Id__c"))
    h.deliver(make_event(lead_id="ld_9", owner="bob", external_id="crm-42"))
    (lookup,) = salesforce.api.calls("GET", "/services/data/v60.0/sobjects/Lead/")
    assert lookup.path.endswith("/Lead/Leadrouter_Id__c/crm-42")
    assert lookup.query == {"fields": "Id"}
    assert salesforce.leads[LEAD_B]["OwnerId"] == BOB
    # no identifiers known at all: looked up by the leadrouter lead id
    h.deliver(make_event(id="2-0", lead_id="ld_ext_a", owner="alice"))
    assert salesforce.leads[LEAD_A]["OwnerId"] == ALICE


def test_rate_limits_are_retried(salesforce: Salesforce, leadrouter: Any,
                                 make_event: Any) -> None:
    from router.plugins.host import DeliveryFailed

    plugin = _plugin(salesforce, inline_wait=1.5)
    h = leadrouter(plugin)
    h.deliver(make_event(id="0-0", lead_id="ld_0", owner="bob", external_id=LEAD_B))
    event = make_event(lead_id="ld_1", owner="alice", external_id=LEAD_A)
    salesforce.api.fail_next(1, 403, {}, [{"message": "TotalRequests Limit exceeded.",
                                           "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    with pytest.raises(DeliveryFailed, match="REQUEST_LIMIT_EXCEEDED"):
        h.deliver(event)
    salesforce.api.fail_next(1, 429, {"Retry-After": "1"})
    h.deliver(event)
    first, second = salesforce.api.calls("PATCH", "/services/data/")[-2:]
    assert (first.status, second.status) == (429, 204)
    assert second.at - first.at >= 0.95  # Retry-After honoured
    salesforce.api.fail_next(1, 503, {}, [{"message": "down", "errorCode": "SERVER_UNAVAILABLE"}])
    with pytest.raises(DeliveryFailed, match="HTTP 503"):
        h.deliver(make_event(id="2-0", lead_id="ld_1", owner="bob", external_id=LEAD_A))
    counts = {k[2]: n for k, n in h.host.counts.items() if k[:2] == ("salesforce-owner",
                                                                       "on_event")}
    assert counts == {"raised": 2, "ok": 2}
    assert plugin.token_fetches == 1


def test_bad_mappings_are_permanent_and_name_what_to_fix(
        salesforce: Salesforce, make_event: Any, caplog: pytest.LogCaptureFixture) -> None:
    plugin = _plugin(salesforce)
    caplog.set_level(logging.INFO, "leadrouter.plugins.salesforce")

    def deliver(**data: Any) -> str:
        with pytest.raises(PermanentError) as info:
            asyncio.run(plugin.on_event(event=make_event(**data)))
        return str(info.value)

    assert "add `dave=<id>` to LEADROUTER_SALESFORCE_OWNERS" in deliver(
        id="1-0", lead_id="ld_1", owner="dave", external_id=LEAD_A)
    text = deliver(id="2-0", lead_id="ld_2", owner="carol", external_id=LEAD_A)
    assert "refused OwnerId (OwnerId=0055e000009NoNoAAA, rep 'carol')" in text
    assert "FIELD_INTEGRITY_EXCEPTION" in text
    assert "does not exist" in deliver(id="3-0", lead_id="ld_3", owner="alice",
                                       external_id="00Q5e00000GoNeXAAA")
    assert "EXTERNAL_ID_FIELD is not set" in deliver(id="4-0", lead_id="ld_4", owner="alice",
                                                     email="ann@acme-corp.example")
    assert "neither an external id nor an email" in deliver(id="5-0", lead_id="ld_5",
                                                            owner="alice")
    assert issubclass(PermanentError, PermanentDeliveryError)  # the outbox dead-letters it
    assert "rep 'carol'" in caplog.text and "@" not in caplog.text


def test_wrong_client_secret_is_retried(salesforce: Salesforce, make_event: Any) -> None:
    plugin = _plugin(salesforce, secret="wrong")
    with pytest.raises(RetryableError, match=r"invalid_client.*CLIENT_SECRET"):
        asyncio.run(plugin.on_event(event=make_event(owner="alice", external_id=LEAD_A)))
    assert salesforce.leads[LEAD_A]["OwnerId"] != ALICE


# -- the OAuth 2.0 JWT bearer flow --------------------------------------------------------------

def _rsa_pair() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@pytest.fixture(scope="module")
def rsa_pair() -> tuple[str, str]:
    return _rsa_pair()


def _jwt_org(public: str) -> Salesforce:
    return Salesforce("3MVG9-client", "unused", users={ALICE, BOB}, leads={LEAD_A: {}},
                      jwt_key=public, username="integration@acme.example")


def _jwt_plugin(crm: Salesforce, private: str, **kw: Any) -> SalesforceOwnerPlugin:
    kw.setdefault("username", "integration@acme.example")
    return SalesforceOwnerPlugin(crm.api.url, "3MVG9-client", owners={"alice": ALICE, "bob": BOB},
                                 auth="jwt", private_key=private, timeout=2, **kw)


def test_jwt_bearer_flow(rsa_pair: tuple[str, str], leadrouter: Any, make_event: Any) -> None:
    import time

    private, public = rsa_pair
    crm = _jwt_org(public)
    with crm.api:
        plugin = _jwt_plugin(crm, private)
        assert plugin.audience == "https://login.salesforce.com"  # not a sandbox
        h = leadrouter(plugin)
        h.deliver(make_event(lead_id="ld_1", owner="alice", external_id=LEAD_A))
        (token,) = crm.api.calls("POST", "/services/oauth2/token")
        form = token.form()
        assert set(form) == {"grant_type", "assertion"}
        assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        (claims,) = crm.assertions  # verified with the public key by the server
        assert (claims["iss"], claims["sub"], claims["aud"]) == (
            "3MVG9-client", "integration@acme.example", "https://login.salesforce.com")
        assert 0 < claims["exp"] - time.time() <= 180
        assert crm.leads[LEAD_A]["OwnerId"] == ALICE
        crm.revoke_tokens()  # 401 → a new assertion, a new token, the call repeated
        h.deliver(make_event(id="2-0", lead_id="ld_1", owner="bob", external_id=LEAD_A))
        assert crm.leads[LEAD_A]["OwnerId"] == BOB
        assert plugin.token_fetches == 2 and len(crm.assertions) == 2


def test_jwt_token_renewed_after_its_ttl(rsa_pair: tuple[str, str], make_event: Any) -> None:
    private, public = rsa_pair
    crm = _jwt_org(public)
    now = [1000.0]
    with crm.api:
        plugin = _jwt_plugin(crm, private, token_ttl=60, clock=lambda: now[0])
        asyncio.run(plugin.on_event(event=make_event(owner="alice", external_id=LEAD_A)))
        now[0] += 30
        asyncio.run(plugin.on_event(event=make_event(id="2-0", owner="bob", external_id=LEAD_A)))
        assert plugin.token_fetches == 1
        now[0] += 31  # past the TTL: a new token before the call, no 401 first
        asyncio.run(plugin.on_event(event=make_event(id="3-0", owner="alice",
                                                     external_id=LEAD_A)))
    assert plugin.token_fetches == 2
    assert [r.status for r in crm.api.requests].count(401) == 0


def test_jwt_with_the_wrong_key_or_user_is_retried_naming_the_settings(
        rsa_pair: tuple[str, str], make_event: Any, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Any) -> None:
    private, public = rsa_pair
    other, _ = _rsa_pair()
    crm = _jwt_org(public)
    with crm.api:
        with pytest.raises(RetryableError, match=r"invalid_grant.*Signature.*PRIVATE_KEY_FILE"):
            asyncio.run(_jwt_plugin(crm, other).on_event(
                event=make_event(owner="alice", external_id=LEAD_A)))
        with pytest.raises(RetryableError, match="approved this consumer"):
            asyncio.run(_jwt_plugin(crm, private, username="someone@else.example").on_event(
                event=make_event(owner="alice", external_id=LEAD_A)))
    assert crm.leads[LEAD_A]["OwnerId"] != ALICE
    # configured from the environment, the key read from a file
    key_file = tmp_path / "server.key"
    key_file.write_text(private)
    for var, value in {"AUTH": "jwt", "LOGIN_URL": "https://test.salesforce.com",
                       "CLIENT_ID": "3MVG9-client", "USERNAME": "integration@acme.example",
                       "OWNERS": f"alice={ALICE}"}.items():
        monkeypatch.setenv(f"LEADROUTER_SALESFORCE_{var}", value)
    monkeypatch.delenv("LEADROUTER_SALESFORCE_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("LEADROUTER_SALESFORCE_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("LEADROUTER_SALESFORCE_PRIVATE_KEY_FILE", raising=False)
    with pytest.raises(PluginDisabled, match="_PRIVATE_KEY_FILE"):
        SalesforceOwnerPlugin()
    monkeypatch.setenv("LEADROUTER_SALESFORCE_PRIVATE_KEY_FILE", str(key_file))
    plugin = SalesforceOwnerPlugin()
    assert plugin.audience == "https://test.salesforce.com"  # a sandbox
    assert plugin.private_key == private


def test_concurrent_deliveries_share_one_token_fetch(salesforce: Salesforce,
                                                     make_event: Any) -> None:
    """The plugin declares sink_concurrency: deliveries in flight together fetch one token,
    first and again after the session was revoked (each 401 only drops the token it used)."""
    plugin = _plugin(salesforce)
    assert plugin.sink_concurrency > 1

    async def burst(first: int) -> None:
        await asyncio.gather(*(plugin.on_event(make_event(
            id=f"{first + i}-0", lead_id=f"ld_{i}", owner=("alice", "bob")[i % 2],
            external_id=(LEAD_A, LEAD_B)[i % 2])) for i in range(4)))

    async def both() -> None:
        await burst(1)
        assert plugin.token_fetches == 1
        salesforce.revoke_tokens()
        await burst(10)

    asyncio.run(both())
    assert plugin.token_fetches == 2
    assert len(salesforce.api.calls("POST", "/services/oauth2/token")) == 2
    assert len([r for r in salesforce.api.calls("PATCH", "/services/") if r.status == 204]) == 8
