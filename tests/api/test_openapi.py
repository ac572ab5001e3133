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
