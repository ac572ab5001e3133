"""Account ownership over real HTTP (router/api/accounts.py): CRUD, routing, errors."""

from __future__ import annotations

import httpx
import redis
from _service import AUTH, JSON, assert_problem, lead

# --- accounts -----------------------------------------------------------------------------------


def test_account_ownership_crud_and_routing(api: httpx.Client) -> None:
    domain = "acme-corp.example"
    assert api.post("/v1/leads", json=lead()).json()["assignment"]["pool"] == "rr"
    assert_problem(api.get(f"/v1/accounts/{domain}", headers=AUTH), 404)

    put = api.put(f"/v1/accounts/{domain}", json={"owner": "owner1"}, headers=AUTH)
    assert put.status_code == 200, put.text
    assert put.json() == {"domain": domain, "owner": "owner1"}
    assert api.get(f"/v1/accounts/{domain}", headers=AUTH).json() == put.json()
    # case does not matter
    assert api.get(f"/v1/accounts/{domain.upper()}", headers=AUTH).json()["owner"] == "owner1"

    decision = api.post("/v1/leads", json=lead(email="someone.else@acme-corp.example"))
    assert decision.status_code == 201
    a = decision.json()["assignment"]
    assert (a["owner"], a["rule"], a["pool"]) == ("owner1", "account-owner", None)
    assert "owner1" in a["reason"]
    stored = api.get(f"/v1/leads/{decision.json()['lead_id']}").json()
    assert stored["assignment"]["owner"] == "owner1"
    assert stored["history"][-1]["detail"]["owner"] == "owner1"
    # the company domain counts even when the person writes from elsewhere... (website field)
    via_domain = api.post("/v1/leads", json=lead(email=None, phone="+1 415 555 0100",
                                                 domain="https://acme-corp.example/x"))
    assert via_domain.json()["assignment"]["owner"] == "owner1"
    # ...and junk from the account still goes to review, per the rules
    junk = api.post("/v1/leads", json=lead(campaign="junk")).json()
    assert junk["assignment"]["queue"] == "review" and junk["assignment"]["owner"] is None

    # reassign, then delete
    assert api.put(f"/v1/accounts/{domain}", json={"owner": "r3"},
                   headers=AUTH).json()["owner"] == "r3"
    assert api.post("/v1/leads", json=lead()).json()["assignment"]["owner"] == "r3"
    deleted = api.delete(f"/v1/accounts/{domain}", headers=AUTH)
    assert deleted.status_code == 204 and deleted.content == b""
    assert_problem(api.get(f"/v1/accounts/{domain}", headers=AUTH), 404)
    assert_problem(api.delete(f"/v1/accounts/{domain}", headers=AUTH), 404)
    assert api.post("/v1/leads", json=lead()).json()["assignment"]["pool"] == "rr"


def test_account_errors(api: httpx.Client, redis_client: redis.Redis) -> None:
    for method in ("GET", "PUT", "DELETE"):
        assert_problem(api.request(method, "/v1/accounts/acme.example",
                                   json={"owner": "r1"} if method == "PUT" else None), 401)
    body = assert_problem(api.put("/v1/accounts/acme.example", json={"owner": "ghost"},
                                  headers=AUTH), 422)
    assert body["errors"][0]["path"] == "$.owner"
    body = assert_problem(api.put("/v1/accounts/acme.example", json={"owner": 5},
                                  headers=AUTH), 422)
    assert body["errors"][0]["path"] == "$.owner"
    body = assert_problem(api.put("/v1/accounts/acme.example", json={"owner": "r1", "x": 1},
                                  headers=AUTH), 422)
    assert body["errors"][0]["path"] == "$.x"
    assert_problem(api.put("/v1/accounts/acme.example", json={}, headers=AUTH), 422)
    assert_problem(api.put("/v1/accounts/acme.example", content=b"{", headers={**AUTH, **JSON}),
                   400)
    assert_problem(api.put("/v1/accounts/localhost", json={"owner": "r1"}, headers=AUTH), 422)
    for junk in (b"[" * 50_000 + b"]" * 50_000, b'{"owner": "\xff"}', b"\x00", b"NaN", b""):
        response = api.put("/v1/accounts/acme.example", content=junk, headers={**AUTH, **JSON})
        assert 400 <= response.status_code < 500, (junk[:20], response.text)
    assert_problem(api.get("/v1/accounts/localhost", headers=AUTH), 422)
    assert redis_client.dbsize() == 0
