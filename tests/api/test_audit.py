"""The audit log over real HTTP on real Valkey (router/services/audit.py, ``GET /v1/admin/audit``):
each kind of change leaves exactly one entry with the verified actor, rules reloads once across
workers, filters, cursor pagination, retention, no erased data, auth, and a failed audit write
that does not fail the change."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from _service import AUTH, Clock, assert_problem, lead

AUDIT = "lr:{lr}:audit"


def _entries(client: httpx.Client, headers: dict[str, str] | None = None,
             **params: Any) -> list[dict[str, Any]]:
    response = client.get("/v1/admin/audit", headers=headers or AUTH,
                          params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def _key(client: httpx.Client, scopes: list[str], **extra: Any) -> dict[str, Any]:
    created = client.post("/v1/admin/keys", headers=AUTH,
                          json={"source": "*", "scopes": scopes, **extra})
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def _save(path: Path, text: str) -> None:
    """Save a rules file in place (truncate, then write), as many editors do: the watcher
    reloads it once the directory has settled (rules_watch.py), never half-written — which
    would be a real rejected reload, audited as one, and break the entry counts below
    (tests/services/test_rules_watch_settle.py catches a save mid-write on purpose)."""
    path.write_text(text)


def _wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


def test_each_change_leaves_one_entry_naming_the_verified_actor(api: httpx.Client) -> None:
    admin_key = _key(api, ["admin"], name="ops")
    as_key = {"Authorization": f"Bearer {admin_key['key']}"}
    assert api.put("/v1/reps/r1", headers=AUTH, json={"status": "away"}).status_code == 200
    assert api.put("/v1/reps/r2", headers=as_key, json={
        "status": "out_of_office", "until": "2030-01-02T09:00:00Z"}).status_code == 200
    assert api.put("/v1/accounts/acme.com", headers=AUTH,
                   json={"owner": "r1"}).status_code == 200
    assert api.put("/v1/accounts/acme.com", headers=as_key,
                   json={"owner": "r2"}).status_code == 200
    assert api.delete("/v1/accounts/acme.com", headers=as_key).status_code == 204
    intake = _key(api, ["intake", "events"])
    rotated = api.post(f"/v1/admin/keys/{intake['id']}/rotate?grace=60", headers=as_key)
    assert rotated.status_code == 201
    assert api.delete(f"/v1/admin/keys/{rotated.json()['id']}",
                      headers=as_key).status_code == 204
    # refused or failed changes leave nothing
    assert api.put("/v1/reps/nobody", headers=AUTH, json={"status": "away"}).status_code == 404
    assert api.delete("/v1/admin/keys/key_nope", headers=AUTH).status_code == 404
    assert api.put("/v1/reps/r3", headers={"Authorization": "Bearer nope"},
                   json={"status": "away"}).status_code == 401

    got = [(e["actor"], e["action"], e["target"], e["details"]) for e in _entries(api)]
    me = f"key:{admin_key['id']}"
    scopes = ["events", "intake"]
    assert got[::-1] == [
        ("admin-token", "apikey.created", f"apikey:{admin_key['id']}",
         {"key_id": admin_key["id"], "source": "*", "scopes": ["admin"], "rep": None}),
        ("admin-token", "rep.status", "rep:r1",
         {"rep": "r1", "from": "available", "to": "away", "until": None}),
        (me, "rep.status", "rep:r2", {"rep": "r2", "from": "available", "to": "out_of_office",
                                      "until": "2030-01-02T09:00:00+00:00"}),
        ("admin-token", "account.owner", "account:acme.com",
         {"domain": "acme.com", "from": None, "to": "r1"}),
        (me, "account.owner", "account:acme.com", {"domain": "acme.com", "from": "r1",
                                                   "to": "r2"}),
        (me, "account.owner", "account:acme.com", {"domain": "acme.com", "from": "r2",
                                                   "to": None}),
        ("admin-token", "apikey.created", f"apikey:{intake['id']}",
         {"key_id": intake["id"], "source": "*", "scopes": scopes, "rep": None}),
        (me, "apikey.rotated", f"apikey:{intake['id']}",
         {"key_id": intake["id"], "source": "*", "scopes": scopes, "rep": None,
          "new_key_id": rotated.json()["id"], "grace_s": 60}),
        (me, "apikey.revoked", f"apikey:{rotated.json()['id']}",
         {"key_id": rotated.json()["id"], "source": "*", "scopes": scopes, "rep": None}),
    ]
    # never a key: not the new ones, not the rotated one
    raw = repr(_entries(api))
    for secret in (admin_key["key"], intake["key"], rotated.json()["key"]):
        assert secret not in raw


def test_an_erasure_is_audited_with_counts_only(api: httpx.Client,
                                                redis_client: redis.Redis) -> None:
    email = "erase.me@secret-corp.example"
    ids = [api.post("/v1/leads", json=lead(email=email, company="Secret Corp")).json()["lead_id"]
           for _ in range(2)]
    other = api.post("/v1/leads", json=lead(email="keep@x.example")).json()["lead_id"]
    person = api.delete(f"/v1/people/{email}", headers=AUTH)
    assert person.status_code == 200, person.text
    one = api.delete(f"/v1/leads/{other}", headers=AUTH)
    assert one.status_code == 200
    erased = _entries(api, action="lead.erased")
    assert [(e["actor"], e["target"], e["details"]["kind"], e["details"]["leads"])
            for e in erased] == [("admin-token", f"erasure:{one.json()['id']}", "lead", 1),
                                 ("admin-token", f"erasure:{person.json()['id']}", "person", 2)]
    stored = repr(redis_client.xrange(AUDIT)).lower()
    for secret in (email, "erase.me", "secret", "keep@x.example", other, *ids):
        assert secret.lower() not in stored, secret


def test_rules_reloads_admin_accepted_and_rejected(start_service: Any, rules_dir: Path) -> None:
    server = start_service(rules_dir=str(rules_dir))
    with server.client() as client:
        admin_key = _key(client, ["admin"])
        scoring = rules_dir / "scoring.yaml"
        text = scoring.read_text()
        _save(scoring, text.replace('"employees >= 1000"', '"employees >>= 1000"'))
        assert client.post("/v1/admin/rules/reload", headers=AUTH).status_code == 422
        _save(scoring, text.replace("budget >= 50000", "budget >= 40000"))
        ok = client.post("/v1/admin/rules/reload",
                         headers={"Authorization": f"Bearer {admin_key['key']}"})
        assert ok.status_code == 200, ok.text
        # the same files again: still one entry per request, saying nothing changed
        assert client.post("/v1/admin/rules/reload", headers=AUTH).status_code == 200
        accepted_again, accepted, rejected = _entries(client, target="rules")
    assert rejected["actor"] == "admin-token" and rejected["action"] == "rules.reload.rejected"
    assert rejected["details"]["files"] == ["scoring.yaml"]
    assert rejected["details"]["error_count"] == 1
    assert "scoring.yaml:3" in rejected["details"]["errors"][0]
    assert rejected["details"]["trigger"] == "admin"
    assert accepted["actor"] == f"key:{admin_key['id']}"
    assert accepted["action"] == "rules.reload.accepted"
    assert accepted["details"]["changed"] is True
    assert accepted["details"]["files"] == ["scoring.yaml"]
    assert accepted["details"]["version"] == ok.json()["version"]
    assert accepted_again["details"]["changed"] is False
    assert accepted_again["details"]["files"] == []


def test_a_file_change_seen_by_two_workers_is_recorded_once(start_service: Any,
                                                            rules_dir: Path) -> None:
    # two apps on one Redis and one rules directory: two workers, each with its own watcher
    a = start_service(rules_dir=str(rules_dir), reload_poll_seconds=0.1)
    b = start_service(rules_dir=str(rules_dir), reload_poll_seconds=0.1)
    with a.client() as ca, b.client() as cb:
        version = ca.get("/v1/rules").json()["version"]
        routing = rules_dir / "routing.yaml"
        _save(routing, routing.read_text().replace("pool: rr}", "pool: nowhere}"))
        for client in (ca, cb):
            _wait_for(lambda c=client: c.get("/v1/rules").json()["last_rejected"])
        _wait_for(lambda: _entries(ca, target="rules"))
        time.sleep(0.3)  # the other worker's claim, lost, before the files change again
        scoring = rules_dir / "scoring.yaml"
        _save(routing, routing.read_text().replace("pool: nowhere}", "pool: rr}"))
        _save(scoring, scoring.read_text().replace("budget >= 50000", "budget >= 40000"))
        for client in (ca, cb):
            _wait_for(lambda c=client: c.get("/v1/rules").json()["version"] != version)
        _wait_for(lambda: len(_entries(ca, target="rules")) == 2)
        # an admin reload in one worker: the other follows (generation), recorded once
        assert ca.post("/v1/admin/rules/reload", headers=AUTH).status_code == 200
        _save(scoring, scoring.read_text())  # touched, same contents: reloaded, no entry
        time.sleep(0.5)  # several polls of both watchers
        entries = _entries(cb, target="rules")
    got = [(e["actor"], e["action"], e["details"]["trigger"]) for e in entries]
    assert got == [("admin-token", "rules.reload.accepted", "admin"),
                   ("rules-watcher", "rules.reload.accepted", "file change"),
                   ("rules-watcher", "rules.reload.rejected", "file change")]
    assert any("nowhere" in e for e in entries[2]["details"]["errors"])
    assert entries[2]["details"]["files"] == ["routing.yaml"]
    assert entries[1]["details"]["files"] in (["scoring.yaml"], ["routing.yaml", "scoring.yaml"])


def _fill(client: httpx.Client, n: int) -> None:
    for i in range(n):
        rep = ("r1", "r2", "r3")[i % 3]
        status = ("away", "available")[i // 3 % 2]
        assert client.put(f"/v1/reps/{rep}", headers=AUTH,
                          json={"status": status}).status_code == 200


def test_filters_and_pages_newest_first(api: httpx.Client) -> None:
    _fill(api, 9)
    assert api.put("/v1/accounts/acme.com", headers=AUTH, json={"owner": "r1"}).status_code == 200
    every = _entries(api)
    assert len(every) == 10 and every[0]["action"] == "account.owner"
    ids = [e["id"] for e in every]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))), reverse=True)
    assert [e["target"] for e in _entries(api, target="rep:r2")] == ["rep:r2"] * 3
    assert len(_entries(api, action="rep.status")) == 9
    assert _entries(api, actor="rules-watcher") == []
    assert len(_entries(api, actor="admin-token", action="rep.status", target="rep:r1")) == 3
    middle = every[4]["at"]
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(middle // 1000))
    since += f".{middle % 1000:03d}Z"
    newer = _entries(api, since=since)
    assert [e["id"] for e in newer] == ids[:5]
    older = _entries(api, until=since)
    assert [e["id"] for e in older] == ids[4:]
    # pages of 4, filtered: every entry once, in order, then no cursor
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 4, "action": "rep.status"}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/v1/admin/audit", headers=AUTH, params=params).json()
        pages += 1
        seen += [e["id"] for e in page["entries"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert seen == [e["id"] for e in every if e["action"] == "rep.status"] and pages == 3
    # new entries while paging do not shift the pages below the cursor
    first = api.get("/v1/admin/audit", headers=AUTH, params={"limit": 5}).json()
    _fill(api, 2)
    second = api.get("/v1/admin/audit", headers=AUTH,
                     params={"limit": 5, "cursor": first["next_cursor"]}).json()
    assert [e["id"] for e in first["entries"] + second["entries"]] == ids
    assert second["next_cursor"] is None  # unfiltered, the last page knows it is the last


def test_bad_filters_and_cursors_are_refused(api: httpx.Client) -> None:
    _fill(api, 3)
    body = assert_problem(api.get("/v1/admin/audit", headers=AUTH,
                                  params={"action": "rep.deleted"}), 422)
    assert "rep.status" in body["detail"] and "rules.reload.rejected" in body["detail"]
    assert "rep.status" in body["allowed"]
    page = api.get("/v1/admin/audit", headers=AUTH, params={"limit": 1}).json()
    for forged in ("nonsense", "eyJ4IjoxfQ", page["next_cursor"] + "x", "W10"):
        body = assert_problem(api.get("/v1/admin/audit", headers=AUTH,
                                      params={"limit": 1, "cursor": forged}), 400)
        assert "next_cursor" in body["detail"]
    # a cursor of other filters
    assert_problem(api.get("/v1/admin/audit", headers=AUTH, params={
        "limit": 1, "cursor": page["next_cursor"], "target": "rep:r1"}), 400)
    assert_problem(api.get("/v1/admin/audit", headers=AUTH, params={"since": "yesterday"}), 422)
    assert_problem(api.get("/v1/admin/audit", headers=AUTH,
                           params={"since": "1h", "until": "2h"}), 422)
    assert_problem(api.get("/v1/admin/audit", headers=AUTH, params={"limit": 0}), 400)


def test_who_may_read_the_audit_log(api: httpx.Client) -> None:
    assert_problem(api.get("/v1/admin/audit"), 401)
    assert_problem(api.get("/v1/admin/audit", headers={"Authorization": "Bearer nope"}), 401)
    viewer = _key(api, ["viewer"])
    body = assert_problem(api.get("/v1/admin/audit",
                                  headers={"Authorization": f"Bearer {viewer['key']}"}), 403)
    assert "admin" in body["detail"]
    admin = _key(api, ["admin"])
    assert len(_entries(api, headers={"Authorization": f"Bearer {admin['key']}"})) == 2


def test_entries_older_than_the_retention_are_trimmed(start_service: Any,
                                                      redis_client: redis.Redis) -> None:
    clock = Clock()
    server = start_service(clock=clock, audit_retention=3600)
    with server.client() as client:
        _fill(client, 3)
        assert redis_client.xlen(AUDIT) == 3
        clock.advance(minutes=50)
        _fill(client, 1)
        assert len(_entries(client)) == 4
        clock.advance(minutes=20)  # the first three are now 70 minutes old
        assert len(_entries(client)) == 1  # not answered even before they are trimmed
        _fill(client, 1)
        assert redis_client.xlen(AUDIT) == 2  # ... and gone at the next write
        assert 0 < redis_client.pttl(AUDIT) <= 3600 * 1000


def test_a_failed_audit_write_does_not_fail_the_change(api: httpx.Client,
                                                       redis_client: redis.Redis) -> None:
    redis_client.set(AUDIT, "not a stream")  # every XADD to it fails (WRONGTYPE)
    response = api.put("/v1/reps/r1", headers=AUTH, json={"status": "away"})
    assert response.status_code == 200, response.text
    assert api.get("/v1/reps/r1", headers=AUTH).json()["live"]["status"] == "away"
    metrics = api.get("/metrics").text
    line = next(x for x in metrics.splitlines() if x.startswith("leadrouter_redis_errors_total")
                and 'operation="audit_record"' in x and 'kind="error"' in x)
    assert float(line.rsplit(" ", 1)[1]) >= 1


@pytest.mark.parametrize("setting", ["400d", "3600"])
def test_the_retention_setting_takes_durations(setting: str) -> None:
    from router.settings import Settings

    settings = Settings.from_env({"LEADROUTER_AUDIT_RETENTION": setting})
    assert settings.audit_retention == (400 * 86400 if setting == "400d" else 3600)


def test_an_accounts_import_is_one_summary_entry(api: httpx.Client) -> None:
    csv = {"Content-Type": "text/csv", **AUTH}
    body = "domain,owner\nacme.com,r1\nbeta.com,r2\n"
    assert api.post("/v1/accounts:import", headers=csv, content=body).status_code == 200
    bad = api.post("/v1/accounts:import", headers=csv, content=body + "gamma.com,nobody\n")
    assert bad.status_code == 422  # all or nothing: nothing written, nothing recorded
    assert [(e["actor"], e["action"], e["target"], e["details"]) for e in _entries(api)] == [
        ("admin-token", "account.import", "accounts", {"lines": 2, "imported": 2})]
