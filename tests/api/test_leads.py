"""Lead intake over real HTTP: ``POST /v1/leads``, ``POST /v1/leads:batch``, ``GET /v1/leads/{id}``.

A real uvicorn server (in a thread) runs the real app against a real valkey-server; the rules
are the small deterministic set of ``tests/_service.py`` (reps on duty around the clock).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import redis
from _service import JSON, assert_problem, lead, write_rules

REPS_RR = {"r1", "r2", "r3"}


def _lead_keys(client: redis.Redis) -> list[bytes]:
    """The stored lead hashes (not their history lists)."""
    return [k for k in client.scan_iter(match="lr:{lr}:lead:*") if not k.endswith(b":history")]


def _ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- POST /v1/leads: the decision ---------------------------------------------------------------


def test_create_lead_returns_the_full_decision(api: httpx.Client,
                                               redis_client: redis.Redis) -> None:
    response = api.post("/v1/leads", json=lead())
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/json")
    d = response.json()

    # time-ordered (12 hex digits of ms) then 96 random bits: the id is a capability
    assert re.fullmatch(r"ld_[0-9a-f]{12}[0-9a-f]{24}", d["lead_id"]), d["lead_id"]
    created_ms = int(d["lead_id"][3:15], 16)
    assert abs(created_ms / 1000 - dt.datetime.now(dt.UTC).timestamp()) < 300
    assert response.headers["location"] == f"/v1/leads/{d['lead_id']}"
    assert d["duplicate"] is False
    # score: fit.big 25 + fit.us 10, bant.budget 20 → 55 → grade B, status mql
    score = d["score"]
    assert (score["total"], score["grade"], score["fit"], score["bant"], score["engagement"]) \
        == (55, "B", 35, 20, 0)
    assert {c["rule"]: c["points"] for c in score["contributions"]} == \
        {"fit.big": 25, "fit.us": 10, "bant.budget": 20}
    assert sum(c["points"] for c in score["contributions"]) == score["total"]
    assert d["status"] == "mql"
    assert (d["territory"], d["segment"]) == ("us", "enterprise")
    # assignment: the default route is the round-robin pool
    a = d["assignment"]
    assert set(a) >= {"owner", "pool", "queue", "rule", "strategy", "reason"}
    assert a["owner"] in REPS_RR
    assert (a["pool"], a["queue"], a["rule"], a["strategy"]) == \
        ("rr", None, "to-rr", "round_robin")
    assert a["reason"]
    # SLA: sla-mql, accept within 1h on the wall clock
    assert d["sla"]["policy"] == "sla-mql"
    created = _ts(d["created_at"])
    assert abs(_ts(d["sla"]["due_at"]) - (created + dt.timedelta(hours=1))) < \
        dt.timedelta(seconds=1)
    assert abs(created - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    # explanation: one step per stage, naming the rule that decided
    steps = {s["stage"]: s for s in d["explanation"]}
    assert {"scoring", "qualification", "territories", "segments", "assignment", "sla"} <= \
        set(steps)
    assert steps["assignment"]["rule"] == "to-rr"
    assert steps["qualification"]["outcome"] == "mql"
    assert "to-rr" in d["matched"]
    assert d["rules_version"] == api.get("/v1/rules").json()["version"]
    assert [h["event"] for h in d["history"]] == ["created", "assigned"]

    # it was stored: exactly one lead in Redis, and GET returns the same decision
    assert len(_lead_keys(redis_client)) == 1
    stored = api.get(response.headers["location"])
    assert stored.status_code == 200
    s = stored.json()
    for field in ("lead_id", "status", "score", "territory", "segment", "assignment",
                  "rules_version", "matched", "explanation"):
        assert s[field] == d[field], field
    assert s["sla"]["policy"] == d["sla"]["policy"]
    assert _ts(s["sla"]["due_at"]) == _ts(d["sla"]["due_at"])
    assert s["duplicate"] is False
    assert [h["event"] for h in s["history"]] == ["created", "assigned"]
    assert s["history"][1]["detail"]["owner"] == a["owner"]


def test_round_robin_rotates_through_every_member(api: httpx.Client) -> None:
    owners = [api.post("/v1/leads", json=lead(email=f"p{i}@acme-corp.example")).json()
              ["assignment"]["owner"] for i in range(6)]
    assert set(owners[:3]) == REPS_RR  # each member once per turn, in a fixed order
    assert owners[3:] == owners[:3]


def test_queued_lead_has_no_owner_and_a_queued_history(api: httpx.Client) -> None:
    response = api.post("/v1/leads", json=lead(campaign="junk"))
    assert response.status_code == 201, response.text
    d = response.json()
    assert d["status"] == "bad_lead"
    assert d["assignment"]["owner"] is None
    assert (d["assignment"]["queue"], d["assignment"]["rule"]) == ("review", "to-review")
    assert d["sla"]["policy"] is None and d["sla"]["due_at"] is None
    history = api.get(f"/v1/leads/{d['lead_id']}").json()["history"]
    assert [h["event"] for h in history] == ["created", "queued"]
    assert history[1]["detail"]["queue"] == "review"


def test_lenient_numbers_are_accepted(api: httpx.Client) -> None:
    response = api.post("/v1/leads", json=lead(employees="1,200", budget="$50k"))
    assert response.status_code == 201, response.text
    assert response.json()["score"]["total"] == 55


# --- GET /v1/leads/{id} -------------------------------------------------------------------------


def test_unknown_lead_is_a_404_problem(api: httpx.Client) -> None:
    for lead_id in ("ld_0000000000000000000000000000", "nope", "x" * 300):
        body = assert_problem(api.get(f"/v1/leads/{lead_id}"), 404)
        assert body["type"].endswith("/lead-not-found") or len(lead_id) > 64


# --- POST /v1/leads: client errors --------------------------------------------------------------


INVALID_FIELDS: list[tuple[str, Any]] = [
    ("employees", "a lot"),
    ("employees", -5),
    ("employees", 1.5),
    ("employees", True),
    ("budget", "cheap"),
    ("budget", -1),
    ("annual_revenue", "1e999"),
    ("email", "not-an-email"),
    ("country", "Atlantis"),
    ("consent", "maybe"),
    ("timeline_days", 10**9),
    ("company", "x" * 300),
    ("attributes", {"bad name": 1}),
    ("attributes", [1, 2]),
]


def test_invalid_field_is_a_422_naming_its_path(api: httpx.Client,
                                                redis_client: redis.Redis) -> None:
    for field, value in INVALID_FIELDS:
        body = assert_problem(api.post("/v1/leads", json=lead(**{field: value})), 422)
        assert body["errors"][0]["path"].startswith(f"$.{field}"), (field, value, body)
        assert f"$.{field}" in body["detail"], (field, value, body)
        assert body["type"].endswith("/validation")
    assert _lead_keys(redis_client) == []


def test_unknown_field_is_refused_with_its_path(api: httpx.Client) -> None:
    body = assert_problem(api.post("/v1/leads", json=lead(favourite_colour="teal")), 422)
    assert body["errors"][0]["path"] == "$.favourite_colour", body
    assert "favourite_colour" in body["detail"]


def test_malformed_json_is_a_400(api: httpx.Client) -> None:
    body = assert_problem(api.post("/v1/leads", content=b'{"email": "a@b.example",', headers=JSON),
                          400)
    assert "JSON" in body["detail"]


def test_wrong_content_type_is_a_415(api: httpx.Client) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml",
                         "multipart/form-data; boundary=x"):
        body = assert_problem(api.post("/v1/leads", content=b'{"email": "a@b.example"}',
                                       headers={"Content-Type": content_type}), 415)
        assert "application/json" in body["detail"]


def test_json_with_charset_is_accepted(api: httpx.Client) -> None:
    response = api.post("/v1/leads", content=b'{"email": "a@acme-corp.example"}',
                        headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 201, response.text


def test_oversized_body_is_a_413(start_service: Any) -> None:
    server = start_service(max_body_bytes=1024)
    big = lead(description="x" * 1500)
    with server.client() as client:
        assert client.post("/v1/leads", json=lead()).status_code == 201
        assert_problem(client.post("/v1/leads", json=big), 413)

        def chunks() -> Any:  # no Content-Length: the limit still applies while reading
            body = httpx.Request("POST", "/", json=big).content
            for i in range(0, len(body), 256):
                yield body[i:i + 256]

        assert_problem(client.post("/v1/leads", content=chunks(), headers=JSON), 413)
        assert_problem(client.post("/v1/leads:batch", json={"leads": [big]}), 413)


_DEEP = 100_000
HOSTILE: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("whitespace", b"   \n"),
    ("null", b"null"),
    ("array", b"[]"),
    ("array of leads", b'[{"email": "a@b.example"}]'),
    ("string", b'"lead"'),
    ("number", b"42"),
    ("true", b"true"),
    ("deep arrays", b"[" * _DEEP + b"]" * _DEEP),
    ("deep objects", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    ("deep unterminated", b"[" * _DEEP),
    ("deep in attributes", b'{"attributes": {"x": ' + b"[" * _DEEP + b"]" * _DEEP + b"}}"),
    ("deep in unknown field", b'{"employees": "x", "y": ' + b"[" * _DEEP + b"]" * _DEEP + b"}"),
    ("deep after bad amount", b'{"budget": "lots", "attributes": {"x": '
     + b"{" * 20_000 + b"}" * 20_000 + b"}}"),
    ("huge string", b'{"email": "' + b"a" * 900_000 + b'@x.example"}'),
    ("huge number", b'{"employees": ' + b"9" * 5_000 + b"}"),
    ("huge key", b'{"' + b"k" * 100_000 + b'": 1}'),
    ("many attributes", b'{"attributes": {' + b",".join(
        b'"a%d": %d' % (i, i) for i in range(5_000)) + b"}}"),
    ("invalid utf-8", b'{"company": "\xff\xfe\xfd"}'),
    ("lone surrogate", b'{"company": "\\ud800"}'),
    ("utf-16 bom", '{"company": "x"}'.encode("utf-16")),
    ("NaN", b'{"budget": NaN}'),
    ("Infinity", b'{"budget": Infinity}'),
    ("-Infinity", b'{"annual_revenue": -Infinity}'),
    ("1e999", b'{"budget": 1e999}'),
    ("-1e999", b'{"annual_revenue": -1e999}'),
    ("null byte raw", b'{"company": "a\x00b"}'),
    ("null byte body", b"\x00" * 64),
    ("escaped null in key", b'{"em\\u0000ail": "a@b.example"}'),
    ("duplicate keys", b'{"employees": 1, "employees": "many"}'),
    ("trailing garbage", b'{"email": "a@b.example"} {"email": "c@d.example"}'),
    ("trailing comma", b'{"email": "a@b.example",}'),
    ("single quotes", b"{'email': 'a@b.example'}"),
    ("comment", b'{"email": "a@b.example" /* hi */}'),
    ("nested lead", b'{"lead": {"email": "a@b.example"}}'),
    ("object for string", b'{"email": {"$ne": null}}'),
    ("array for number", b'{"employees": [1000]}'),
    ("attribute object", b'{"attributes": {"x": {"y": 1}}}'),
    ("attributes not object", b'{"attributes": "x=1"}'),
    ("proto pollution", b'{"__proto__": {"admin": true}, "constructor": 1}'),
    ("control chars", b'{"title": "\\u0007\\u001b[31m\\r\\n"}'),
    ("huge exponent amount", b'{"budget": "1e400"}'),
    ("negative zero", b'{"employees": -0}'),
    ("big int", b'{"employees": 18446744073709551616}'),
]


def test_garbage_bodies_never_cause_a_500(api: httpx.Client) -> None:
    failures = []
    for name, body in HOSTILE:
        wrapped = b'{"leads": [' + body + b"]}" if body.strip() else b'{"leads": [null]}'
        for path, content in (("/v1/leads", body), ("/v1/leads:batch", body),
                              ("/v1/leads:batch", wrapped), ("/v1/rules/evaluate", body)):
            response = api.post(path, content=content, headers=JSON)
            ctype = response.headers.get("content-type", "")
            if response.status_code >= 500 or (
                    response.status_code >= 400 and "problem+json" not in ctype):
                failures.append(f"{name} → {path}: {response.status_code} {response.text[:120]}")
    assert not failures, "\n".join(failures)
    assert api.post("/v1/leads", json=lead()).status_code == 201  # and it still works
    assert api.get("/readyz").status_code == 200


# --- idempotency --------------------------------------------------------------------------------


def test_same_idempotency_key_and_body_returns_the_first_decision(
        api: httpx.Client, redis_client: redis.Redis) -> None:
    key = {"Idempotency-Key": "3f0b9c2e-7d1a-4c55-9a8e-1d2f3a4b5c6d"}
    first = api.post("/v1/leads", json=lead(), headers=key)
    assert first.status_code == 201
    again = api.post("/v1/leads", json=lead(), headers=key)
    assert again.status_code == 200, again.text
    d1, d2 = first.json(), again.json()
    assert d2["duplicate"] is True and d1["duplicate"] is False
    assert d2["lead_id"] == d1["lead_id"]
    assert d2["assignment"] == d1["assignment"]
    assert again.headers["location"] == f"/v1/leads/{d1['lead_id']}"
    assert len(_lead_keys(redis_client)) == 1
    # the retry routed nothing: the next new lead gets the next rep in the rotation
    assert len(api.get(f"/v1/leads/{d1['lead_id']}").json()["history"]) == 2


def test_same_idempotency_key_with_another_body_is_a_422(api: httpx.Client) -> None:
    key = {"Idempotency-Key": "key-1"}
    first = api.post("/v1/leads", json=lead(), headers=key)
    assert first.status_code == 201
    body = assert_problem(api.post("/v1/leads", json=lead(employees=10), headers=key), 422)
    assert "Idempotency-Key" in body["detail"]
    # the original is unaffected, and a new key routes the changed lead
    assert api.post("/v1/leads", json=lead(), headers=key).json()["duplicate"] is True
    assert api.post("/v1/leads", json=lead(employees=10),
                    headers={"Idempotency-Key": "key-2"}).status_code == 201


def test_idempotency_keys_are_not_shared_with_other_keys(api: httpx.Client) -> None:
    a = api.post("/v1/leads", json=lead(), headers={"Idempotency-Key": "a"}).json()
    b = api.post("/v1/leads", json=lead(), headers={"Idempotency-Key": "b"}).json()
    assert a["lead_id"] != b["lead_id"]


def test_invalid_idempotency_key_is_a_400(api: httpx.Client,
                                          redis_client: redis.Redis) -> None:
    for value in ("", '""', "x" * 256, "tab\there"):
        response = api.post("/v1/leads", json=lead(), headers={"Idempotency-Key": value})
        body = assert_problem(response, 400)
        assert "Idempotency-Key" in body["detail"]
    assert _lead_keys(redis_client) == []
    ok = api.post("/v1/leads", json=lead(), headers={"Idempotency-Key": "x" * 255})
    assert ok.status_code == 201


def test_external_id_dedupes_retries(api: httpx.Client, redis_client: redis.Redis) -> None:
    first = api.post("/v1/leads", json=lead(external_id="crm-123"))
    assert first.status_code == 201
    again = api.post("/v1/leads", json=lead(external_id="crm-123"))
    assert again.status_code == 200
    assert again.json()["lead_id"] == first.json()["lead_id"]
    assert again.json()["duplicate"] is True
    # the same external id with other data is refused like a reused Idempotency-Key: it says
    # which id, which lead holds it and how to fix it (issue 21, item 9) — no second lead
    updated = api.post("/v1/leads", json=lead(external_id="crm-123", title="CTO"))
    problem = assert_problem(updated, 422)
    assert problem["type"].endswith("/idempotency-mismatch")
    assert problem["lead_id"] == first.json()["lead_id"] and problem["field"] == "external_id"
    assert "'crm-123'" in problem["detail"] and "new external_id" in problem["detail"]
    other = api.post("/v1/leads", json=lead(external_id="crm-124"))
    assert other.status_code == 201
    assert len(_lead_keys(redis_client)) == 2


def test_a_lead_nobody_can_reach_is_refused(api: httpx.Client,
                                            redis_client: redis.Redis) -> None:
    """Issue 21, item 8: ``{}`` was a 201 nurture lead. Now 422 naming email and phone, for one
    lead and for a batch item; one of them is enough."""
    for body in ({}, {"first_name": "Ann", "company": "Acme", "phone": "  "}):
        problem = assert_problem(api.post("/v1/leads", json=body), 422)
        assert problem["type"].endswith("/contact-required")
        assert problem["fields"] == ["email", "phone"]
        assert [e["path"] for e in problem["errors"]] == ["$.email", "$.phone"]
        assert "`email`, `phone`" in problem["detail"] and "require_any_of" in problem["detail"]
    assert _lead_keys(redis_client) == []
    assert api.post("/v1/leads", json=lead(email=None, phone="+1 555 0100")).status_code == 201
    out = api.post("/v1/leads:batch", json={"leads": [{"company": "Acme"}, lead()]}).json()
    assert [r["status"] for r in out["results"]] == [422, 201]
    assert [e["path"] for e in out["results"][0]["problem"]["errors"]] == [
        "$.leads[0].email", "$.leads[0].phone"]


def test_the_leads_section_configures_both_checks(start_service: Callable[..., Any],
                                                   tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules", {"intake.yaml": (
        "leads:\n  require_any_of: [phone]\n  external_id_repeat: duplicate\n")})
    with start_service(rules_dir=str(rules)).client() as client:
        problem = assert_problem(client.post("/v1/leads", json=lead()), 422)
        assert problem["fields"] == ["phone"]
        first = client.post("/v1/leads", json=lead(phone="+1 555 0100", external_id="e-1"))
        assert first.status_code == 201, first.text
        changed = client.post("/v1/leads", json=lead(phone="+1 555 0199", external_id="e-1"))
        assert changed.status_code == 200 and changed.json()["duplicate"] is True
        assert changed.json()["lead_id"] == first.json()["lead_id"]


def test_the_same_lead_written_differently_is_a_retry(api: httpx.Client,
                                                      redis_client: redis.Redis) -> None:
    """Idempotency compares the decoded lead: key order, spacing and number spelling are no
    change, for an external_id and for an Idempotency-Key."""
    first = api.post("/v1/leads", json=lead(external_id="crm-900"))
    assert first.status_code == 201, first.text
    fields = lead(external_id="crm-900", employees="5,000")
    respelt = json.dumps(dict(reversed(list(fields.items()))), indent=3).encode()
    again = api.post("/v1/leads", content=respelt, headers=JSON)
    assert again.status_code == 200, again.text
    assert again.json()["lead_id"] == first.json()["lead_id"] and again.json()["duplicate"]
    keyed = {"Idempotency-Key": "respelt-1"}
    one = api.post("/v1/leads", json=lead(), headers=keyed)
    body = json.dumps(dict(reversed(list(lead().items()))), indent=2).encode()
    two = api.post("/v1/leads", content=body, headers={**keyed, **JSON})
    assert (one.status_code, two.status_code) == (201, 200), two.text
    assert two.json()["lead_id"] == one.json()["lead_id"]
    assert len(_lead_keys(redis_client)) == 2


def test_external_id_dedupe_is_per_source(api: httpx.Client) -> None:
    a = api.post("/v1/leads", json=lead(external_id="42", source="hubspot"))
    b = api.post("/v1/leads", json=lead(external_id="42", source="marketo"))
    assert (a.status_code, b.status_code) == (201, 201), (a.text, b.text)
    assert a.json()["lead_id"] != b.json()["lead_id"]
    again = api.post("/v1/leads", json=lead(external_id="42", source="marketo"))
    assert again.status_code == 200
    assert again.json()["lead_id"] == b.json()["lead_id"]


async def _post_concurrently(url: str, n: int, body: dict[str, Any],
                             headers: dict[str, str]) -> list[httpx.Response]:
    responses: list[httpx.Response] = []
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        start = anyio.Event()

        async def one() -> None:
            await start.wait()
            responses.append(await client.post("/v1/leads", json=body, headers=headers))

        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(one)
            await anyio.sleep(0.05)
            start.set()
    return responses


@pytest.mark.anyio
@pytest.mark.parametrize("via", ["idempotency-key", "external_id"])
async def test_concurrent_duplicates_route_exactly_once(start_service: Any, aredis: Any,
                                                        via: str) -> None:
    server = start_service()
    body = lead(external_id="ext-concurrent") if via == "external_id" else lead()
    headers = {"Idempotency-Key": "concurrent-key"} if via == "idempotency-key" else {}
    responses = await _post_concurrently(server.url, 20, body, headers)
    codes = sorted(r.status_code for r in responses)
    assert codes.count(201) == 1, codes
    assert set(codes) <= {200, 201, 409}, codes
    created = next(r.json() for r in responses if r.status_code == 201)
    for r in responses:
        if r.status_code == 200:
            assert r.json()["lead_id"] == created["lead_id"]
            assert r.json()["duplicate"] is True
        elif r.status_code == 409:
            assert r.headers["content-type"].startswith("application/problem+json")
            assert int(r.headers["retry-after"]) >= 1
    leads = [k async for k in aredis.scan_iter(match="lr:{lr}:lead:*")
             if not k.endswith(b":history")]
    assert len(leads) == 1
    # a retry after the dust settled gets the stored decision
    async with httpx.AsyncClient(base_url=server.url) as client:
        retry = await client.post("/v1/leads", json=body, headers=headers)
    assert retry.status_code == 200 and retry.json()["lead_id"] == created["lead_id"]
    # the rotation moved once: the next lead goes to the next member
    stats = httpx.get(f"{server.url}/v1/pools/rr").json()
    assert sum(m["assigned_in_pool"] for m in stats["members"]) == 1


# --- POST /v1/leads:batch -----------------------------------------------------------------------


def test_batch_routes_each_item_and_isolates_bad_ones(api: httpx.Client,
                                                      redis_client: redis.Redis) -> None:
    items = [lead(email="one@acme-corp.example"), lead(employees="many"),
             lead(email="three@acme-corp.example", campaign="junk"),
             lead(favourite_colour="teal")]
    response = api.post("/v1/leads:batch", json={"leads": items})
    assert response.status_code == 200, response.text
    out = response.json()
    assert (out["created"], out["duplicates"], out["failed"]) == (2, 0, 2)
    results = out["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert [r["status"] for r in results] == [201, 422, 201, 422]
    assert results[0]["decision"]["assignment"]["pool"] == "rr"
    assert results[2]["decision"]["assignment"]["queue"] == "review"
    assert results[1]["problem"]["errors"][0]["path"] == "$.leads[1].employees"
    assert "$.leads[1].employees" in results[1]["problem"]["detail"]
    assert results[3]["problem"]["errors"][0]["path"] == "$.leads[3].favourite_colour"
    assert len(_lead_keys(redis_client)) == 2
    for r in (results[0], results[2]):
        stored = api.get(f"/v1/leads/{r['decision']['lead_id']}")
        assert stored.status_code == 200


def test_batch_accepts_a_bare_array(api: httpx.Client) -> None:
    out = api.post("/v1/leads:batch", json=[lead(), lead(email="x@acme-corp.example")]).json()
    assert [r["status"] for r in out["results"]] == [201, 201]


def test_batch_with_an_idempotency_key_is_safe_to_retry(api: httpx.Client,
                                                        redis_client: redis.Redis) -> None:
    items = {"leads": [lead(email=f"b{i}@acme-corp.example") for i in range(3)]}
    key = {"Idempotency-Key": "batch-1"}
    first = api.post("/v1/leads:batch", json=items, headers=key).json()
    again = api.post("/v1/leads:batch", json=items, headers=key).json()
    assert first["created"] == 3 and again["duplicates"] == 3 and again["created"] == 0
    assert [r["decision"]["lead_id"] for r in again["results"]] == \
        [r["decision"]["lead_id"] for r in first["results"]]
    assert len(_lead_keys(redis_client)) == 3


def test_batch_over_the_limit_is_a_413(start_service: Any, redis_client: redis.Redis) -> None:
    server = start_service(batch_limit=3)
    with server.client() as client:
        ok = client.post("/v1/leads:batch", json={"leads": [lead()] * 3})
        assert ok.status_code == 200 and ok.json()["created"] == 3
        body = assert_problem(client.post("/v1/leads:batch", json={"leads": [lead()] * 4}), 413)
        assert "3" in body["detail"]
    assert len(_lead_keys(redis_client)) == 3  # nothing of the refused batch was routed


def test_batch_envelope_errors(api: httpx.Client) -> None:
    for body, status in ((b'{"leads": 5}', 422), (b'{"leads": [], "extra": 1}', 422),
                         (b'{"lead": []}', 422), (b'{"leads": [', 400)):
        assert_problem(api.post("/v1/leads:batch", content=body, headers=JSON), status)


def test_batch_wrong_content_type_is_a_415(api: httpx.Client) -> None:
    assert_problem(api.post("/v1/leads:batch", content=b"[]",
                            headers={"Content-Type": "text/csv"}), 415)


def test_empty_batch(api: httpx.Client) -> None:
    out = api.post("/v1/leads:batch", json={"leads": []})
    assert out.status_code == 200
    assert out.json()["results"] == []

