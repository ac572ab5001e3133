"""The OpenAPI document over real HTTP (router/api/openapi.py)."""

from __future__ import annotations

from typing import Any

import httpx


def test_openapi_schema_documents_the_lead_body(api: httpx.Client) -> None:
    assert api.get("/schema").status_code == 200
    response = api.get("/schema/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for path in ("/v1/leads", "/v1/leads:batch", "/v1/leads/{lead_id}", "/v1/rules",
                 "/v1/rules/evaluate", "/v1/admin/rules/reload", "/v1/reps/{rep_id}",
                 "/v1/pools/{pool_id}", "/v1/accounts/{domain}", "/livez", "/readyz"):
        assert path in paths, (path, sorted(paths))
    body = paths["/v1/leads"]["post"]["requestBody"]
    assert body["required"] is True
    lead_schema = body["content"]["application/json"]["schema"]
    assert lead_schema["title"] == "Lead"
    props = lead_schema["properties"]
    for field in ("email", "employees", "country", "budget", "external_id", "attributes"):
        assert field in props, field
    assert lead_schema.get("additionalProperties") is False  # unknown fields are refused
    batch = paths["/v1/leads:batch"]["post"]["requestBody"]["content"]["application/json"]
    assert batch["schema"]["properties"]["leads"]["items"]["title"] == "Lead"
    rep = paths["/v1/reps/{rep_id}"]["put"]["requestBody"]["content"]["application/json"]
    assert set(rep["schema"]["properties"]) == {"status", "until"}
    # every reference in the document resolves
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    assert refs
    schemas = doc.get("components", {}).get("schemas", {})
    dangling = {r for r in refs if r.removeprefix("#/components/schemas/") not in schemas}
    assert not dangling, dangling


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in doc["paths"].items()
            for method, op in item.items() if method in _METHODS]


_METHODS = {"get", "put", "post", "delete", "patch"}


def test_every_error_response_is_a_documented_problem(api: httpx.Client) -> None:
    doc = api.get("/schema/openapi.json").json()
    problem = doc["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    errors = 0
    for method, path, op in _operations(doc):
        for status, response in op["responses"].items():
            if int(status) < 400 or (path, status) == ("/readyz", "503"):
                continue  # readyz's 503 is its own health body, not a problem
            errors += 1
            assert response["description"], (method, path, status)
            assert set(response["content"]) == {"application/problem+json"}, \
                (method, path, status, response)
            schema = response["content"]["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, status)
        if "requestBody" in op:  # every body these operations read is required
            assert op["requestBody"]["required"] is True, (method, path)
    assert errors > 150


def test_each_operation_documents_the_errors_it_can_answer(api: httpx.Client) -> None:
    doc = api.get("/schema/openapi.json").json()
    statuses = {(method, path): {int(s) for s in op["responses"]}
                for method, path, op in _operations(doc)}
    expect = {
        # body (400/413/422), its own 409/415, an optional intake key (401/403), Redis (503)
        ("POST", "/v1/leads"): {200, 201, 400, 401, 403, 409, 413, 415, 422, 503},
        # a guard (401/403/503), a path parameter (404)
        ("GET", "/v1/reps/{rep_id}"): {200, 400, 401, 403, 404, 503},
        ("PUT", "/v1/reps/{rep_id}"): {200, 400, 401, 403, 404, 413, 422, 503},
        ("DELETE", "/v1/leads/{lead_id}"): {200, 400, 401, 403, 404, 503},
        ("POST", "/v1/forms/{form_id}"): {303, 400, 404, 409, 413, 415, 422, 429, 503},
        ("POST", "/v1/rules/evaluate"): {200, 400, 413, 422},  # nothing stored: no 503
        ("POST", "/v1/events"): {200, 202, 400, 401, 403, 404, 413, 415, 422, 503},
        ("GET", "/v1/sla/report"): {200, 400, 422, 503},
        ("GET", "/livez"): {200},
        ("GET", "/readyz"): {200, 503},
    }
    for key, wanted in expect.items():
        assert statuses[key] == wanted, (key, sorted(statuses[key]))
    for (method, path), got in statuses.items():
        if "{" in path:
            assert 404 in got, (method, path)
    evaluate = doc["paths"]["/v1/rules/evaluate"]["post"]["requestBody"]
    shapes = evaluate["content"]["application/json"]["schema"]["anyOf"]
    assert [s["title"] for s in shapes] == ["Lead", "DryRunRequest"]


def test_options_allow_lists_every_method_of_the_path(api: httpx.Client) -> None:
    doc = api.get("/schema/openapi.json").json()
    checked = 0
    for path, item in doc["paths"].items():
        if path == "/v1/forms/{form_id}":
            continue  # its OPTIONS is the CORS preflight (tests/api/test_forms.py)
        url = path.replace("{", "").replace("}", "")
        methods = {m.upper() for m in item if m in _METHODS} | {"OPTIONS"}
        response = api.options(url)
        assert response.status_code == 204, (path, response.status_code)
        assert set(response.headers["allow"].split(", ")) == methods, (path, response.headers)
        checked += 1
    assert checked > 20
    # the DELETE of /v1/leads/{id} is in both answers: OPTIONS and a 405
    assert "DELETE" in api.options("/v1/leads/ld_x").headers["allow"]
    refused = api.patch("/v1/leads/ld_x")
    assert refused.status_code == 405
    assert set(refused.headers["allow"].split(", ")) == {"GET", "DELETE", "OPTIONS"}
