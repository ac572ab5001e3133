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


def _key(client: Any, *scopes: str, source: str = "*") -> str:
    made = client.post("/v1/admin/keys", headers=AUTH,
                       json={"source": source, "scopes": list(scopes)})
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    return key


# Every endpoint that needs the admin token or an ``admin``-scoped key (issue 21, item 6).
ADMIN_CALLS: tuple[tuple[str, str, dict[str, Any] | None], ...] = (
    ("POST", "/v1/admin/rules/reload", None),
    ("GET", "/v1/reps/r1", None), ("PUT", "/v1/reps/r1", {"status": "away"}),
    ("GET", "/v1/accounts/acme.example", None),
    ("PUT", "/v1/accounts/acme.example", {"owner": "r1"}),
    ("DELETE", "/v1/accounts/acme.example", None),
    ("GET", "/v1/admin/keys", None), ("POST", "/v1/admin/keys", {"source": "x",
                                                                  "scopes": ["intake"]}),
    ("POST", "/v1/admin/keys/key_x/rotate", None), ("DELETE", "/v1/admin/keys/key_x", None),
    ("GET", "/v1/people/pat@big.example", None), ("DELETE", "/v1/people/pat@big.example", None),
    ("DELETE", "/v1/leads/ld_x", None), ("GET", "/v1/admin/erasures", None),
)


def test_every_admin_endpoint_answers_401_without_credentials_and_403_without_the_scope(
        start_service: Callable[..., Any]) -> None:
    server = start_service()
    with server.client() as client:
        intake, admin = _key(client, "intake"), _key(client, "admin")
        for method, path, body in ADMIN_CALLS:
            def call(headers: dict[str, str], method: str = method, path: str = path,
                     body: dict[str, Any] | None = body) -> Any:
                return client.request(method, path, headers=headers, json=body)

            for anonymous in ({}, {"Authorization": "Bearer not-the-token"},
                              {"X-API-Key": "lrk_unknown"}):
                got = call(anonymous)
                assert_problem(got, 401)
                assert got.headers["www-authenticate"].startswith("Bearer"), (method, path)
            for headers in ({"Authorization": f"Bearer {intake}"}, {"X-API-Key": intake}):
                body_ = assert_problem(call(headers), 403)
                assert "'admin'" in body_["detail"], (method, path, body_)
                assert body_["type"].endswith("api-key"), (method, path, body_)
            allowed = call({"X-API-Key": admin})
            assert allowed.status_code not in (401, 403), (method, path, allowed.text)


def test_posting_events_needs_an_events_key_when_keys_are_required(
        start_service: Callable[..., Any]) -> None:
    event = {"email": "pat@big.example", "event": "page_view"}
    with start_service().client() as client:  # keys not required: open, as before
        assert client.post("/v1/events", json=event).status_code == 202
    with start_service(require_api_key=True).client() as client:
        assert_problem(client.post("/v1/events", json=event), 401)
        assert_problem(client.post("/v1/events", json=[event]), 401)
        assert_problem(client.post("/v1/events", json=event,
                                   headers={"X-API-Key": "lrk_unknown"}), 401)
        intake = _key(client, "intake", source="api")
        body = assert_problem(client.post("/v1/events", json=event,
                                          headers={"X-API-Key": intake}), 403)
        assert "'events'" in body["detail"]
        events = _key(client, "events", source="segment")
        ok = client.post("/v1/events", json=event, headers={"Authorization": f"Bearer {events}"})
        assert ok.status_code == 202, ok.text
        assert client.post("/v1/events", json=[event], headers={"X-API-Key": events}
                           ).status_code == 200
        assert client.post("/v1/events", json=event, headers=AUTH).status_code in (200, 202)


def test_reading_engagement_needs_the_admin_token_or_a_viewer_key(
        start_service: Callable[..., Any]) -> None:
    with start_service().client() as client:
        assert client.post("/v1/events", json={"email": "pat@big.example",
                                               "event": "page_view"}).status_code == 202
        query = {"email": "pat@big.example"}
        assert "'viewer'" in assert_problem(client.get("/v1/engagement", params=query),
                                            401)["detail"]
        assert_problem(client.get("/v1/engagement", params=query,
                                  headers={"X-API-Key": "lrk_unknown"}), 401)
        for scope in ("intake", "events"):
            body = assert_problem(client.get("/v1/engagement", params=query,
                                             headers={"X-API-Key": _key(client, scope)}), 403)
            assert "'viewer'" in body["detail"]
        viewer = _key(client, "viewer")
        for headers in ({"X-API-Key": viewer}, AUTH, {"X-API-Key": _key(client, "admin")}):
            got = client.get("/v1/engagement", params=query, headers=headers)
            assert got.status_code == 200, got.text
            assert got.json()["events"][0]["event"] == "page_view"
        # a viewer key reads; it neither posts events nor manages keys
        assert_problem(client.get("/v1/admin/keys", headers={"X-API-Key": viewer}), 403)
