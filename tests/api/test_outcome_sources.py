"""Outcomes through the intake sources over real HTTP: a signed HubSpot deal-stage webhook
(mapped by the source's ``outcomes.stages``) and a generic JSON mapping (signed with Standard
Webhooks), landing on the leads those sources created."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _intake import SECRET_ENV, dumps, hubspot_events, hubspot_headers, standard_headers
from _service import AUTH, Clock, assert_problem, write_rules

INTAKE = """\
sources:
  hubspot:
    secret_env: LR_TEST_HUBSPOT_SECRET
    rate_limit: 1000/min
    outcomes:
      stages: {appointmentscheduled: meeting, qualifiedtobuy: opportunity,
               closedwon: won, closedlost: lost}
  crm:
    type: json
    auth: [standard_webhooks]
    secret_env: LR_TEST_CRM_SECRET
    rate_limit: 1000/min
    fields:
      contact.email: email
      contact.ref: external_id
    outcomes:
      stages: {Demo: meeting, Won: won, Lost: lost}
      fields: {stage: deal.stage, external_id: deal.ref, amount: deal.value,
               currency: deal.currency, reason: deal.why, at: deal.at, outcome_id: event_id}
"""


class Svc:
    def __init__(self, client: httpx.Client, url: str) -> None:
        self.client, self.url = client, url

    def hubspot(self, payload: Any) -> httpx.Response:
        body = dumps(payload)
        return self.client.post("/v1/sources/hubspot", content=body,
                                headers=hubspot_headers(f"{self.url}/v1/sources/hubspot", body))

    def crm(self, payload: Any, msg_id: str) -> httpx.Response:
        body = dumps(payload)
        return self.client.post("/v1/sources/crm", content=body,
                                headers=standard_headers(body, msg_id))

    def lead_of(self, email: str) -> str:
        response = self.client.get(f"/v1/people/{email}", headers=AUTH)
        assert response.status_code == 200, response.text
        [lead_id] = response.json()["leads"]
        return str(lead_id)

    def total(self) -> dict[str, Any]:
        response = self.client.get("/v1/funnel", params={"by": "source", "since": "2d"})
        assert response.status_code == 200, response.text
        return dict(response.json()["total"])


@pytest.fixture
def svc(start_service: Callable[..., Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Svc]:
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    rules = write_rules(tmp_path / "rules", {"intake.yaml": INTAKE})
    server = start_service(clock=Clock(), rules_dir=str(rules))
    with server.client() as client:
        yield Svc(client, server.url)


def _deal(stage: str, *, contact: int = 12345, deal: int = 9001, **props: Any) -> dict[str, Any]:
    """A deal as a HubSpot workflow webhook sends it (CRM v3 object, with its contact)."""
    return {"objectId": deal, "portalId": 62515, "objectType": "DEAL",
            "properties": {"dealstage": stage, "dealname": "Acme renewal",
                           "hs_lastmodifieddate": str(int(time.time() * 1000) - 60_000),
                           **props},
            "associations": {"contacts": [contact]}}


def test_hubspot_deal_stage_webhook_records_outcomes(svc: Svc) -> None:
    created = svc.hubspot(hubspot_events())
    assert created.status_code == 200 and created.json()["created"] == 1, created.text
    lead_id = svc.lead_of("new.contact@acme.example")
    won = svc.hubspot(_deal("closedwon", amount="12000", deal_currency_code="EUR"))
    assert won.status_code == 200, won.text
    [result] = won.json()["results"]
    assert (result["status"], result["lead_id"], result["stage"]) == (201, lead_id, "won")
    assert won.json()["outcomes"] == 1 and won.json()["created"] == 0
    # HubSpot retries (a new signature, the same deal stage): nothing more is counted.
    again = svc.hubspot(_deal("closedwon", amount="12000", deal_currency_code="EUR"))
    assert again.json()["results"][0]["outcome"] == "duplicate", again.text
    total = svc.total()
    assert total["reached"]["won"] == 1 and total["won_amount"] == {"EUR": "12000.00"}
    # A stage the source does not map is skipped, saying so; a contact we never routed is 404.
    skipped = svc.hubspot(_deal("presentationscheduled"))
    assert "not mapped" in skipped.json()["results"][0]["skipped"]
    unknown = svc.hubspot(_deal("closedlost", contact=777, deal=9002))
    problem = assert_problem(unknown, 404)
    assert "external_id" in problem["detail"]
    bad = dumps(_deal("closedlost"))
    forged = svc.client.post("/v1/sources/hubspot", content=bad, headers=hubspot_headers(
        f"{svc.url}/v1/sources/hubspot", bad, secret="not-the-secret"))
    assert_problem(forged, 401)
    assert svc.total()["reached"]["lost"] == 0


def test_generic_json_outcome_mapping(svc: Svc) -> None:
    made = svc.crm({"contact": {"email": "json@crm.example", "ref": "C-7"}}, "m-1")
    assert made.status_code == 201, made.text
    lead_id = svc.lead_of("json@crm.example")
    demo = svc.crm({"event_id": "e-1", "deal": {"stage": "Demo", "ref": "C-7"}}, "m-2")
    assert demo.status_code == 200, demo.text
    assert demo.json()["results"][0] == {"item": "$", "status": 201, "lead_id": lead_id,
                                         "outcome": "recorded", "stage": "meeting"}
    won = svc.crm({"event_id": "e-2", "deal": {"stage": "Won", "ref": "C-7", "value": 880.5,
                                               "currency": "usd"}}, "m-3")
    assert won.json()["results"][0]["stage"] == "won", won.text
    lead = svc.client.get(f"/v1/leads/{lead_id}")
    assert lead.status_code == 200
    total = svc.total()
    assert (total["reached"]["meeting"], total["reached"]["won"]) == (1, 1)
    assert total["won_amount"] == {"USD": "880.50"}
    bad = svc.crm({"event_id": "e-3", "deal": {"stage": "Won", "ref": "C-7", "value": -1,
                                               "currency": "USD"}}, "m-4")
    assert "non-negative" in assert_problem(bad, 422)["detail"]
    odd = svc.crm({"event_id": "e-4", "deal": {"stage": "Paused", "ref": "C-7"}}, "m-5")
    assert "not mapped" in odd.json()["results"][0]["skipped"]
