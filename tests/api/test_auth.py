"""Who may call what, over real HTTP (router/api/auth.py): the admin token guard and the
intake key ``POST /v1/leads`` may require."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from _service import AUTH, assert_problem, lead


def test_admin_endpoints_are_disabled_without_a_token(start_service: Any) -> None:
    server = start_service(admin_token=None)
    with server.client() as client:
        for method, path in (("POST", "/v1/admin/rules/reload"), ("GET", "/v1/reps/r1"),
                             ("PUT", "/v1/reps/r1"), ("GET", "/v1/accounts/acme.example"),
                             ("PUT", "/v1/accounts/acme.example"),
                             ("DELETE", "/v1/accounts/acme.example")):
            for headers in ({}, AUTH):
                response = client.request(method, path, headers=headers,
                                          json={"status": "away"} if method == "PUT" else None)
                body = assert_problem(response, 403)
                assert "LEADROUTER_ADMIN_TOKEN" in body["detail"], (method, path)
        # the public API keeps working
        assert client.post("/v1/leads", json=lead()).status_code == 201
        assert client.get("/v1/rules").status_code == 200


def test_leads_endpoint_can_require_an_intake_key(start_service: Callable[..., Any]) -> None:
    server = start_service(require_api_key=True)
    with server.client() as client:
        lead = {"email": "keyed@api.example"}
        assert_problem(client.post("/v1/leads", json=lead), 401)
        key = client.post("/v1/admin/keys", headers=AUTH,
                          json={"source": "api", "scopes": ["intake"]}).json()["key"]
        wrong = client.post("/v1/admin/keys", headers=AUTH,
                            json={"source": "api", "scopes": ["events"]}).json()["key"]
        assert_problem(client.post("/v1/leads", json=lead, headers={"X-API-Key": wrong}), 403)
        ok = client.post("/v1/leads", json=lead, headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 201, ok.text
