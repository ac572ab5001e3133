"""Errors as RFC 9457 problems over real HTTP (router/api/errors.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
from _service import JSON, assert_problem, lead


def test_routing_errors_are_problems(api: httpx.Client) -> None:
    for method, path, status in (("GET", "/v1/nothing-here", 404), ("DELETE", "/v1/leads", 405),
                                 ("PATCH", "/v1/leads/ld_x", 405),
                                 ("PUT", "/v1/rules/evaluate", 405)):
        assert_problem(api.request(method, path), status)


def test_a_too_large_body_says_the_limit_and_the_fix(start_service: Any) -> None:
    server = start_service(max_body_bytes=1024)
    big = lead(description="x" * 1500)

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused while reading
        body = httpx.Request("POST", "/", json=big).content
        for i in range(0, len(body), 256):
            yield body[i:i + 256]

    with server.client() as client:
        for response in (client.post("/v1/leads", json=big),
                         client.post("/v1/leads:batch", json={"leads": [big]}),
                         client.post("/v1/leads", content=chunks(), headers=JSON)):
            body = assert_problem(response, 413)
            assert body["type"] == "https://leadrouter.dev/problems/body-too-large"
            assert body["title"] == "Request body too large"
            assert body["limit_bytes"] == 1024
            assert "1,024 bytes" in body["detail"] and "split the batch" in body["detail"]
            assert body["detail"].endswith("LEADROUTER_MAX_BODY_BYTES")


def test_other_http_errors_are_typed_problems(api: httpx.Client) -> None:
    body = assert_problem(api.get("/v1/nothing-here"), 404)
    assert body["type"] == "https://leadrouter.dev/problems/not-found"


def test_a_lone_surrogate_says_what_is_wrong(api: httpx.Client) -> None:
    for path in ("/v1/leads", "/v1/rules/evaluate"):
        body = assert_problem(api.post(path, content=b'{"company": "Acme \\ud800"}',
                                       headers=JSON), 400)
        assert body["type"].endswith("/malformed-json")
        assert "truncated" not in body["detail"]
        assert "lone UTF-16 surrogate escape \\ud800 at byte 18" in body["detail"], body
    # the same character as a pair, or as UTF-8, is a fine company name
    for company in (b'"Acme \\ud83d\\ude00"', '"Acme \U0001F600"'.encode()):
        response = api.post("/v1/leads", content=b'{"email": "s@acme-corp.example", '
                            b'"company": ' + company + b"}", headers=JSON)
        assert response.status_code == 201, response.text
    # a body that really is cut short still says so
    body = assert_problem(api.post("/v1/leads", content=b'{"company": "Acme', headers=JSON),
                          400)
    assert "truncated" in body["detail"]


def test_an_unknown_lead_field_suggests_the_known_one(api: httpx.Client) -> None:
    cases = [("/v1/leads", lead(website="acme.example"), "$.website", "domain"),
             ("/v1/leads", lead(firstname="Jane"), "$.firstname", "first_name"),
             ("/v1/leads", lead(zip="94103"), "$.zip", "postal_code"),
             ("/v1/rules/evaluate", {"lead": lead(website="acme.example")}, "$.lead.website",
              "domain"),
             ("/v1/leads:batch", {"leads": [lead(), lead(Website="a.example")]},
              "$.leads[1].Website", "domain")]
    for path, payload, where, meant in cases:
        response = api.post(path, json=payload)
        if path.endswith(":batch"):  # each item answers for itself
            assert response.status_code == 200, response.text
            body = response.json()["results"][1]["problem"]
        else:
            body = assert_problem(response, 422)
        assert body["errors"][0]["path"] == where, body
        assert f"did you mean `{meant}`?" in body["errors"][0]["message"], body
        assert body["detail"].startswith(f"{where}: ")
        assert f"did you mean `{meant}`?" in body["detail"]
    # nothing close: the known fields, and where free-form data goes
    body = assert_problem(api.post("/v1/leads", json=lead(favourite_colour="teal")), 422)
    assert "the known fields are email, first_name," in body["detail"]
    assert body["detail"].endswith("anything else goes under `attributes`")
