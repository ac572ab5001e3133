"""Machine sources over real HTTP: HubSpot, Segment and generic JSON payload samples with valid
and invalid signatures, expired timestamps, replays; API keys with scopes and rotation."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _intake import (
    CRM_SECRET_NEXT,
    HUBSPOT_FORM,
    SECRET_ENV,
    SEGMENT_IDENTIFY,
    SEGMENT_TRACK,
    dumps,
    hubspot_events,
    hubspot_headers,
    intake_rules,
    segment_headers,
    standard_headers,
)
from _service import AUTH, Clock, assert_problem


class Svc:
    def __init__(self, client: httpx.Client, url: str, clock: Clock) -> None:
        self.client = client
        self.url = url
        self.clock = clock  # the app's: key expiry and rate limits judge by it

    def leads_of(self, email: str) -> list[str]:
        response = self.client.get(f"/v1/people/{email}", headers=AUTH)
        assert response.status_code == 200, response.text
        leads: list[str] = response.json()["leads"]
        return leads

    def key(self, source: str = "crm", scopes: tuple[str, ...] = ("intake",)) -> dict[str, Any]:
        response = self.client.post("/v1/admin/keys", headers=AUTH,
                                    json={"source": source, "scopes": list(scopes),
                                          "name": "test"})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def svc(start_service: Callable[..., Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Svc]:
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    clock = Clock()
    server = start_service(clock=clock, rules_dir=str(intake_rules(tmp_path / "rules")))
    with server.client() as client:
        yield Svc(client, server.url, clock)


def test_hubspot_forms_payload_signed(svc: Svc) -> None:
    url = f"{svc.url}/v1/sources/hubspot"
    body = dumps(HUBSPOT_FORM)
    response = svc.client.post("/v1/sources/hubspot", content=body,
                               headers=hubspot_headers(url, body))
    assert response.status_code == 201, response.text
    assert response.json()["created"] == 1
    [lead_id] = svc.leads_of("ana.lima@bigco.example")
    decision = svc.client.get(f"/v1/leads/{lead_id}").json()
    assert decision["score"]["fit"] == 35  # numemployees "5,000" and "United States" → US
    # the same request again (a replay inside the 5 minutes): nothing new happens
    again = svc.client.post("/v1/sources/hubspot", content=body,
                            headers=hubspot_headers(url, body, ts_ms=int(
                                response.request.headers["x-hubspot-request-timestamp"])))
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert svc.leads_of("ana.lima@bigco.example") == [lead_id]


@pytest.mark.parametrize("case", ["wrong-secret", "tampered", "expired", "future", "missing",
                                  "wrong-url"])
def test_hubspot_bad_signatures_are_refused(svc: Svc, case: str) -> None:
    url = f"{svc.url}/v1/sources/hubspot"
    body = dumps(HUBSPOT_FORM)
    now = int(time.time() * 1000)
    headers = {
        "wrong-secret": hubspot_headers(url, body, secret="nope"),
        "tampered": hubspot_headers(url, body.replace(b"Ana", b"Eve")),
        "expired": hubspot_headers(url, body, ts_ms=now - 6 * 60 * 1000),
        "future": hubspot_headers(url, body, ts_ms=now + 6 * 60 * 1000),
        "missing": {"Content-Type": "application/json"},
        "wrong-url": hubspot_headers(url + "?x=1", body),
    }[case]
    response = svc.client.post("/v1/sources/hubspot", content=body, headers=headers)
    problem = assert_problem(response, 401)
    assert problem["type"].rsplit("/", 1)[1] in ("bad-signature", "stale-timestamp",
                                                  "missing-signature")
    assert svc.leads_of("ana.lima@bigco.example") == []


def test_hubspot_webhook_events(svc: Svc) -> None:
    url = f"{svc.url}/v1/sources/hubspot"
    body = dumps(hubspot_events())
    response = svc.client.post("/v1/sources/hubspot", content=body,
                               headers=hubspot_headers(url, body))
    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["created"] == 1 and summary["skipped"] == 1  # the deal event
    [lead_id] = svc.leads_of("new.contact@acme.example")
    # a later delivery about the same contact does not route it twice
    later = dumps(hubspot_events(base_event=200))
    response = svc.client.post("/v1/sources/hubspot", content=later,
                               headers=hubspot_headers(url, later))
    assert response.json()["duplicates"] == 1
    assert svc.leads_of("new.contact@acme.example") == [lead_id]
    # a contact without an email in the delivery is acknowledged and skipped
    no_email = dumps([hubspot_events(contact=777)[0]])
    response = svc.client.post("/v1/sources/hubspot", content=no_email,
                               headers=hubspot_headers(url, no_email))
    assert response.status_code == 200
    assert "no email" in response.json()["results"][0]["skipped"]


def test_segment_identify_track_and_replay(svc: Svc) -> None:
    body = dumps(SEGMENT_IDENTIFY)
    response = svc.client.post("/v1/sources/segment", content=body,
                               headers=segment_headers(body))
    assert response.status_code == 201, response.text
    [lead_id] = svc.leads_of("peter@initech.example")
    decision = svc.client.get(f"/v1/leads/{lead_id}").json()
    assert decision["score"]["fit"] == 35
    # Segment retries with the same body (same signature): answered, not routed again
    again = svc.client.post("/v1/sources/segment", content=body, headers=segment_headers(body))
    assert again.status_code == 200 and again.json()["replayed"] is True
    # a new message id for the same user is de-duplicated by userId (external_id)
    other = dumps({**SEGMENT_IDENTIFY, "messageId": "ajs-other"})
    response = svc.client.post("/v1/sources/segment", content=other,
                               headers=segment_headers(other))
    assert response.status_code == 200 and response.json()["duplicates"] == 1
    assert svc.leads_of("peter@initech.example") == [lead_id]
    track = dumps({"batch": [SEGMENT_TRACK, {"type": "page", "messageId": "p1"}]})
    response = svc.client.post("/v1/sources/segment", content=track,
                               headers=segment_headers(track))
    assert response.status_code == 200, response.text
    assert response.json()["accepted_events"] == 1 and response.json()["skipped"] == 1


def test_segment_contact_and_changed_identity(svc: Svc) -> None:
    """Issue 21, items 8 and 9 through a source: an identify nobody can reach is refused, and
    the same userId (external_id) with changed traits updates the lead (Segment sources default
    to ``external_id_repeat: update``: a 422 would be retried forever), not silently a
    duplicate and not a second lead."""
    def post(message: dict[str, Any]) -> httpx.Response:
        body = dumps(message)
        return svc.client.post("/v1/sources/segment", content=body,
                               headers=segment_headers(body))

    anonymous = post({**SEGMENT_IDENTIFY, "messageId": "m-no-contact", "userId": "u-nc",
                      "traits": {"firstName": "Nobody", "company": {"name": "Nowhere"}}})
    problem = assert_problem(anonymous, 422)
    assert problem["type"].endswith("/contact-required") and problem["field"] == "email"
    first = post(SEGMENT_IDENTIFY)
    assert first.status_code == 201, first.text
    [lead_id] = svc.leads_of("peter@initech.example")
    moved = post({**SEGMENT_IDENTIFY, "messageId": "m-moved", "traits": {
        **SEGMENT_IDENTIFY["traits"], "title": "CTO"}})
    assert moved.status_code == 200, moved.text
    assert moved.json()["updated"] == 1 and moved.json()["duplicates"] == 0
    assert moved.json()["results"][0]["lead_id"] == lead_id
    assert moved.json()["results"][0]["updated"] is True
    assert svc.leads_of("peter@initech.example") == [lead_id]
    stored = svc.client.get(f"/v1/leads/{lead_id}").json()
    assert stored["history"][-1]["event"] == "updated"
    assert stored["history"][-1]["detail"]["changed"] == ["title"]
    again = post({**SEGMENT_IDENTIFY, "messageId": "m-moved-again", "traits": {
        **SEGMENT_IDENTIFY["traits"], "title": "CTO"}})
    assert again.status_code == 200 and again.json()["duplicates"] == 1, again.text
    assert "updated" not in again.json()["results"][0]


def test_segment_bad_signature_and_bad_messages(svc: Svc) -> None:
    body = dumps(SEGMENT_IDENTIFY)
    assert_problem(svc.client.post("/v1/sources/segment", content=body,
                                   headers=segment_headers(body, "wrong")), 401)
    assert_problem(svc.client.post("/v1/sources/segment", content=body,
                                   headers={"Content-Type": "application/json"}), 401)
    bad = dumps({**SEGMENT_IDENTIFY, "messageId": "m-bad",
                 "traits": {"email": "not an email"}})
    problem = assert_problem(svc.client.post("/v1/sources/segment", content=bad,
                                             headers=segment_headers(bad)), 422)
    assert problem["field"] == "email"
    junk = b'{"type": "identify", "traits": '
    assert_problem(svc.client.post("/v1/sources/segment", content=junk,
                                   headers=segment_headers(junk)), 400)


def test_generic_json_with_api_keys_scopes_and_rotation(svc: Svc) -> None:
    crm = svc.key()
    assert crm["key"].startswith("lrk_")
    lead = {"contact": {"email": "kim@globex.example", "first": "Kim"},
            "account": {"size": "1,500", "country": "US"}, "attributes": {"tier": "gold"}}
    response = svc.client.post("/v1/sources/crm", json=lead,
                               headers={"Authorization": f"Bearer {crm['key']}"})
    assert response.status_code == 201, response.text
    [lead_id] = svc.leads_of("kim@globex.example")
    assert svc.client.get(f"/v1/leads/{lead_id}").json()["score"]["fit"] == 35
    assert_problem(svc.client.post("/v1/sources/crm", json=lead), 401)
    assert_problem(svc.client.post("/v1/sources/crm", json=lead,
                                   headers={"X-API-Key": "lrk_made_up"}), 401)
    other = svc.key(source="hubspot")
    assert_problem(svc.client.post("/v1/sources/crm", json=lead,
                                   headers={"X-API-Key": other["key"]}), 403)
    events_only = svc.key(scopes=("events",))
    assert_problem(svc.client.post("/v1/sources/crm", json=lead,
                                   headers={"X-API-Key": events_only["key"]}), 403)
    # keys are listed without the key and stored only hashed
    listed = svc.client.get("/v1/admin/keys", headers=AUTH).json()
    assert {k["id"] for k in listed} >= {crm["id"], other["id"]}
    assert all("key" not in k for k in listed)
    # rotation: both keys work during the grace period; the old one stops after it
    rotated = svc.client.post(f"/v1/admin/keys/{crm['id']}/rotate?grace=60",
                              headers=AUTH).json()
    for key in (crm["key"], rotated["key"]):
        lead["contact"]["email"] = f"{key[-6:].lower()}@rotation.example"
        ok = svc.client.post("/v1/sources/crm", json=lead, headers={"X-API-Key": key})
        assert ok.status_code == 201, ok.text
    svc.clock.advance(seconds=60)  # the grace period is over: the old key stops, the new works
    assert_problem(svc.client.post("/v1/sources/crm", json=lead,
                                   headers={"X-API-Key": crm["key"]}), 401)
    lead["contact"]["email"] = "after-grace@rotation.example"
    ok = svc.client.post("/v1/sources/crm", json=lead, headers={"X-API-Key": rotated["key"]})
    assert ok.status_code == 201, ok.text
    assert svc.client.delete(f"/v1/admin/keys/{rotated['id']}", headers=AUTH).status_code == 204
    assert_problem(svc.client.post("/v1/sources/crm", json=lead,
                                   headers={"X-API-Key": rotated["key"]}), 401)
    # admin-scoped keys manage keys; intake keys do not
    admin = svc.key(source="*", scopes=("admin",))
    assert svc.client.get("/v1/admin/keys", headers={"X-API-Key": admin["key"]}).status_code \
        == 200
    assert_problem(svc.client.get("/v1/admin/keys", headers={"X-API-Key": other["key"]}), 403)


def test_generic_json_standard_webhooks(svc: Svc) -> None:
    body = dumps({"contact": {"email": "sw@initech.example"}, "account": {"country": "DE"}})
    response = svc.client.post("/v1/sources/crm", content=body,
                               headers=standard_headers(body, "msg_2Kx1"))
    assert response.status_code == 201, response.text
    # the same webhook-id again (sender retry or replay): the first outcome, no new lead
    again = svc.client.post("/v1/sources/crm", content=body,
                            headers=standard_headers(body, "msg_2Kx1"))
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert len(svc.leads_of("sw@initech.example")) == 1
    # same id, different body: refused
    forged = dumps({"contact": {"email": "evil@initech.example"}})
    assert_problem(svc.client.post("/v1/sources/crm", content=forged,
                                   headers=standard_headers(forged, "msg_2Kx1")), 409)
    # expired timestamp, bad signature, a rotated (second) secret
    old = standard_headers(body, "msg_old", ts=int(time.time()) - 600)
    assert assert_problem(svc.client.post("/v1/sources/crm", content=body, headers=old),
                          401)["type"].endswith("stale-timestamp")
    bad = standard_headers(body, "msg_bad", secret="whsec_" + "A" * 44)
    assert_problem(svc.client.post("/v1/sources/crm", content=body, headers=bad), 401)
    nxt = dumps({"contact": {"email": "next@initech.example"}})
    ok = svc.client.post("/v1/sources/crm", content=nxt,
                         headers=standard_headers(nxt, "msg_next", secret=CRM_SECRET_NEXT))
    assert ok.status_code == 201, ok.text


def test_unknown_source_and_media_type(svc: Svc) -> None:
    assert_problem(svc.client.post("/v1/sources/nope", json={}), 404)
    assert_problem(svc.client.post("/v1/sources/crm", content=b"a=b",
                                   headers={"Content-Type": "text/plain"}), 415)


def test_source_without_configured_secret(svc: Svc, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LR_TEST_SEGMENT_SECRET")
    body = dumps(SEGMENT_IDENTIFY)
    problem = assert_problem(svc.client.post("/v1/sources/segment", content=body,
                                             headers=segment_headers(body)), 401)
    assert problem["type"].endswith("source-not-configured")
