"""Right to erasure: after DELETE /v1/people/{email} no key name or value in Redis holds the
email (a scan of the whole database), and the erasure itself is recorded without it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from _intake import (
    SECRET_ENV,
    SEGMENT_IDENTIFY,
    SEGMENT_TRACK,
    dumps,
    intake_rules,
    segment_headers,
    started,
)
from _service import AUTH, JSON, assert_problem, lead

from router.state.erasure import person_hash

EMAIL = "Erase.Me@Privacy.example"


def dump_everything(client: redis.Redis) -> list[bytes]:
    """Every key name and every value in the database, as bytes."""
    out: list[bytes] = []
    for key in client.scan_iter(count=1000):
        out.append(key)
        kind = client.type(key).decode()
        if kind == "string":
            out.append(client.get(key) or b"")
        elif kind == "hash":
            out += [x for kv in client.hgetall(key).items() for x in kv]
        elif kind == "list":
            out += client.lrange(key, 0, -1)
        elif kind == "set":
            out += list(client.smembers(key))
        elif kind == "zset":
            out += client.zrange(key, 0, -1)
        elif kind == "stream":
            for entry_id, fields in client.xrange(key):
                out.append(entry_id)
                out += [x for kv in fields.items() for x in kv]
    return out


def traces(client: redis.Redis, *needles: str) -> list[bytes]:
    lowered = [n.lower().encode() for n in needles]
    return [blob for blob in dump_everything(client) if any(n in blob.lower() for n in lowered)]


def test_erase_person_leaves_no_trace(start_service: Callable[..., Any], tmp_path: Path,
                                      redis_client: redis.Redis, outbox_sink: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    server = start_service(rules_dir=str(intake_rules(tmp_path / "rules")))
    with server.client() as api:
        ids = []
        for i, extra in enumerate(({}, {"external_id": "crm-42"}, {"campaign": "wrr"})):
            r = api.post("/v1/leads", json=lead(email=EMAIL, **extra),
                         headers={**JSON, "Idempotency-Key": f"k-{i}"})
            assert r.status_code == 201, r.text
            ids.append(r.json()["lead_id"])
        r = api.post("/v1/forms/contact", data={"email": EMAIL.lower(),
                                                "lr_started": started()},
                     headers={"Origin": "https://www.example.com", "Accept": "application/json"})
        assert r.status_code == 201, r.text
        ids.append(r.json()["lead_id"])
        for msg in (SEGMENT_IDENTIFY, SEGMENT_TRACK):
            doc = {**msg, "traits": {**msg.get("traits", {}), "email": EMAIL}} \
                if msg["type"] == "identify" else \
                {**msg, "context": {"traits": {"email": EMAIL}}}
            body = dumps(doc)
            r = api.post("/v1/sources/segment", content=body, headers=segment_headers(body))
            assert r.status_code in (200, 201), r.text
        engagement = api.post("/v1/events", json={"email": EMAIL, "event": "demo_requested"},
                              headers=JSON)
        assert engagement.status_code < 500, engagement.text
        other = api.post("/v1/leads", json=lead(email="keep@privacy.example"), headers=JSON)
        assert other.status_code == 201
        found = api.get(f"/v1/people/{EMAIL}", headers=AUTH).json()["leads"]
        assert set(ids) <= set(found) and len(found) == 5
        assert traces(redis_client, EMAIL)  # the test can see the email before erasure

        assert_problem(api.delete(f"/v1/people/{EMAIL}"), 401)
        response = api.delete(f"/v1/people/{EMAIL}", headers=AUTH)
        assert response.status_code == 200, response.text
        record = response.json()
        assert record["kind"] == "person" and record["leads"] == 5
        assert EMAIL.lower() not in response.text.lower()

        assert traces(redis_client, EMAIL, person_hash(EMAIL)) == []
        for lead_id in found:
            assert api.get(f"/v1/leads/{lead_id}").status_code == 404
        assert api.get(f"/v1/people/{EMAIL}", headers=AUTH).json()["leads"] == []
        # other people are untouched; the erasure is logged without the email
        assert api.get(f"/v1/leads/{other.json()['lead_id']}").status_code == 200
        log = api.get("/v1/admin/erasures", headers=AUTH).json()
        assert log[0]["id"] == record["id"] and "privacy.example" not in str(log)
        erased = [f for _, f in redis_client.xrange("lr:{lr}:outbox")
                  if f[b"type"] == b"lead.erased"]
        assert {f[b"lead_id"].decode() for f in erased} == set(found)
        # the same person again: nothing left, still answered
        again = api.delete(f"/v1/people/{EMAIL}", headers=AUTH)
        assert again.status_code == 200 and again.json()["leads"] == 0


def test_erase_one_lead(api: Any, redis_client: redis.Redis) -> None:
    first = api.post("/v1/leads", json=lead(email="two@leads.example"), headers=JSON).json()
    second = api.post("/v1/leads", json=lead(email="two@leads.example", external_id="x-2"),
                      headers=JSON).json()
    assert_problem(api.delete(f"/v1/leads/{first['lead_id']}"), 401)
    response = api.delete(f"/v1/leads/{first['lead_id']}", headers=AUTH)
    assert response.status_code == 200 and response.json()["leads"] == 1
    assert api.get(f"/v1/leads/{first['lead_id']}").status_code == 404
    assert api.get("/v1/people/two@leads.example", headers=AUTH).json()["leads"] == \
        [second["lead_id"]]
    assert not [b for b in dump_everything(redis_client) if first["lead_id"].encode() in b
                and b"lead.erased" not in b and not b.startswith(first["lead_id"].encode())]
    assert_problem(api.delete("/v1/leads/ld_nope", headers=AUTH), 404)
    assert_problem(api.get("/v1/people/not-an-email", headers=AUTH), 422)
