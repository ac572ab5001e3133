"""API-key management over real HTTP (router/api/admin_keys.py): create, list, rotate, revoke,
and the problems each refuses with. A key's use by the intake is in tests/api/test_auth.py
and tests/api/test_sources.py."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx
import redis
from _service import AUTH, JSON, assert_problem


def _create(api: httpx.Client, **body: Any) -> dict[str, Any]:
    response = api.post("/v1/admin/keys", headers=AUTH,
                        json={"source": "crm", "scopes": ["intake"], **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_a_new_key_is_shown_once_and_stored_only_hashed(api: httpx.Client,
                                                        redis_client: redis.Redis) -> None:
    before = int(time.time() * 1000)
    created = _create(api, scopes=["events", "intake", "events"], name="crm sync")
    key = created["key"]
    assert key.startswith("lrk_") and len(key) > 40
    assert created["id"].startswith("key_")
    assert (created["source"], created["scopes"], created["name"]) == \
        ("crm", ["events", "intake"], "crm sync")  # scopes deduplicated and sorted
    assert created["prefix"] == key[:8]
    assert before <= created["created_at"] <= int(time.time() * 1000)
    assert "expires_at" not in created and "rotated_to" not in created

    listed = api.get("/v1/admin/keys", headers=AUTH)
    assert listed.status_code == 200, listed.text
    [info] = listed.json()
    assert "key" not in info
    assert info == {k: v for k, v in created.items() if k != "key"}

    # Redis holds the SHA-256 of the key, never the key itself
    stored = redis_client.hgetall("lr:{lr}:apikeys")
    assert list(stored) == [hashlib.sha256(key.encode()).hexdigest().encode()]
    assert all(key.encode() not in value for value in stored.values())


def test_rotation_keeps_source_and_scopes_and_sets_the_old_keys_expiry(
        api: httpx.Client) -> None:
    old = _create(api, source="hubspot", scopes=["intake", "events"], name="hs")
    now = int(time.time() * 1000)
    rotated = api.post(f"/v1/admin/keys/{old['id']}/rotate?grace=60", headers=AUTH)
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["key"].startswith("lrk_") and new["key"] != old["key"]
    assert new["id"] != old["id"]
    assert (new["source"], new["scopes"], new["name"]) == ("hubspot", ["events", "intake"], "hs")

    listed = {k["id"]: k for k in api.get("/v1/admin/keys", headers=AUTH).json()}
    assert set(listed) == {old["id"], new["id"]}
    assert listed[old["id"]]["rotated_to"] == new["id"]
    assert now + 59_000 <= listed[old["id"]]["expires_at"] <= now + 62_000
    assert "expires_at" not in listed[new["id"]]


def test_revoke_removes_the_key(api: httpx.Client) -> None:
    keep, gone = _create(api), _create(api)
    deleted = api.delete(f"/v1/admin/keys/{gone['id']}", headers=AUTH)
    assert deleted.status_code == 204 and deleted.content == b""
    assert [k["id"] for k in api.get("/v1/admin/keys", headers=AUTH).json()] == [keep["id"]]
    body = assert_problem(api.delete(f"/v1/admin/keys/{gone['id']}", headers=AUTH), 404)
    assert gone["id"] in body["detail"] and body["type"].endswith("key-not-found")


def test_key_management_refusals(api: httpx.Client, redis_client: redis.Redis) -> None:
    for method, path in (("GET", "/v1/admin/keys"), ("POST", "/v1/admin/keys"),
                         ("POST", "/v1/admin/keys/key_x/rotate"),
                         ("DELETE", "/v1/admin/keys/key_x")):
        assert_problem(api.request(method, path, headers={"Authorization": "Bearer nope"}), 401)
    body = assert_problem(api.post("/v1/admin/keys", headers=AUTH,
                                   json={"source": "crm", "scopes": ["root"]}), 422)
    assert "'root'" in body["detail"] and body["errors"][0]["path"] == "$.scopes"
    for payload in ({"source": "CRM!", "scopes": ["intake"]}, {"source": "crm", "scopes": []},
                    {"source": "crm", "scopes": ["intake"], "owner": "me"}, {"scopes": ["intake"]}):
        assert_problem(api.post("/v1/admin/keys", headers=AUTH, json=payload), 422)
    assert_problem(api.post("/v1/admin/keys", headers={**AUTH, **JSON}, content=b"{"), 400)
    assert_problem(api.post("/v1/admin/keys/key_nope/rotate", headers=AUTH), 404)
    assert_problem(api.post("/v1/admin/keys/key_x/rotate?grace=-1", headers=AUTH), 400)
    assert redis_client.hlen("lr:{lr}:apikeys") == 0  # nothing refused was stored
