"""The list APIs over real HTTP with the real service (router/api/lists.py): leads by every
filter and combinations, pagination while leads arrive, cursors, filter errors, moves that
leave the old index, queues with ages, reps and pools live facts, auth."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import redis
from _service import AUTH, assert_problem, lead


def _ids(page: dict[str, Any]) -> list[str]:
    return [item["lead_id"] for item in page["items"]]


def _list(api: httpx.Client, path: str = "/v1/leads", **params: Any) -> dict[str, Any]:
    response = api.get(path, params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _all(api: httpx.Client, path: str = "/v1/leads", **params: Any) -> list[str]:
    """Every id over all pages."""
    out: list[str] = []
    cursor = None
    while True:
        page = _list(api, path, **params, **({"cursor": cursor} if cursor else {}))
        out += _ids(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return out


def _post(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = api.post("/v1/leads", json=lead(**fields))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_every_filter_and_combinations(api: httpx.Client) -> None:
    big = _post(api, email="big@a.example")  # mql 55 B, us, enterprise, pool rr
    small = _post(api, email="small@b.example", employees=10, country="DE",
                  budget=None)  # mql 0 D, other, smb, pool rr
    junk = _post(api, email="junk@c.example", campaign="junk")  # bad_lead → queue review
    wrr = _post(api, email="w@d.example", campaign="wrr", external_id="crm-42")
    newest_first = [wrr["lead_id"], junk["lead_id"], small["lead_id"], big["lead_id"]]
    assert _ids(_list(api)) == newest_first
    assert _ids(_list(api, status="bad_lead")) == [junk["lead_id"]]
    assert _ids(_list(api, status="mql")) == [wrr["lead_id"], small["lead_id"],
                                              big["lead_id"]]
    assert _ids(_list(api, queue="review")) == [junk["lead_id"]]
    assert _ids(_list(api, pool="wrr")) == [wrr["lead_id"]]
    assert _ids(_list(api, pool="rr")) == [small["lead_id"], big["lead_id"]]
    owner = big["assignment"]["owner"]
    assert big["lead_id"] in _ids(_list(api, owner=owner))
    assert _ids(_list(api, territory="other")) == [small["lead_id"]]
    assert _ids(_list(api, segment="smb")) == [small["lead_id"]]
    assert set(_ids(_list(api, grade="B"))) == {big["lead_id"], wrr["lead_id"],
                                                junk["lead_id"]}
    assert _ids(_list(api, grade="D")) == [small["lead_id"]]
    assert _ids(_list(api, sla_state="pending")) == [wrr["lead_id"], small["lead_id"],
                                                     big["lead_id"]]
    # combinations: every filter must hold
    assert _ids(_list(api, status="mql", pool="rr", territory="us")) == [big["lead_id"]]
    assert _ids(_list(api, grade="B", pool="rr", segment="enterprise")) == [big["lead_id"]]
    assert _ids(_list(api, status="bad_lead", pool="rr")) == []
    # q: an exact email (any case) or external id
    assert _ids(_list(api, q="SMALL@b.example")) == [small["lead_id"]]
    assert _ids(_list(api, q="crm-42")) == [wrr["lead_id"]]
    assert _ids(_list(api, q="crm-4")) == []
    assert _ids(_list(api, q="crm-42", status="bad_lead")) == []
    # an external id that looks like an email is found too
    odd = _post(api, email="other@e.example", external_id="user@crm.example")
    assert _ids(_list(api, q="user@crm.example")) == [odd["lead_id"]]
    # rows carry the live facts
    row = _list(api, q="crm-42")["items"][0]
    assert (row["status"], row["pool"], row["grade"], row["territory"], row["segment"],
            row["state"], row["sla_state"]) == ("mql", "wrr", "B", "us", "enterprise",
                                                "assigned", "pending")
    assert row["owner"] == wrr["assignment"]["owner"] and row["due_at"]
    # since / until (created time, with a zone)
    created = _list(api, q="crm-42")["items"][0]["created_at"]
    assert _ids(_list(api, since=created)) == [odd["lead_id"], wrr["lead_id"]]
    assert wrr["lead_id"] not in _ids(_list(api, until=_list(
        api, q="junk@c.example")["items"][0]["created_at"]))


def test_pagination_is_stable_while_leads_arrive(api: httpx.Client) -> None:
    first = [_post(api, email=f"p{i}@x.example")["lead_id"] for i in range(7)]
    page1 = _list(api, limit=3)
    assert _ids(page1) == first[::-1][:3]
    for i in range(4):  # arrivals between pages land before the cursor
        _post(api, email=f"late{i}@x.example")
    page2 = _list(api, limit=3, cursor=page1["next_cursor"])
    assert _ids(page2) == first[::-1][3:6]
    page3 = _list(api, limit=3, cursor=page2["next_cursor"])
    assert _ids(page3) == first[::-1][6:] and page3["next_cursor"] is None
    # several filters: the walk pages the same way
    assert _all(api, status="mql", pool="rr", limit=2) == _all(api, pool="rr", limit=500)
    assert len(_all(api, pool="rr", limit=2)) == 11


def test_cursor_and_filter_errors(api: httpx.Client) -> None:
    for _ in range(3):
        _post(api)
    cursor = _list(api, limit=1)["next_cursor"]
    assert cursor
    bad = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    for forged in (bad, "garbage", "x.y", cursor + "x"):
        body = assert_problem(api.get("/v1/leads", params={"cursor": forged}, headers=AUTH),
                              400)
        assert "without `cursor`" in body["detail"]
    # a cursor of other filters or another list is refused too
    assert_problem(api.get("/v1/leads", params={"cursor": cursor, "status": "mql"},
                           headers=AUTH), 400)
    assert_problem(api.get("/v1/queues/review", params={"cursor": cursor}, headers=AUTH), 400)
    for name, value in (("status", "hot"), ("grade", "Z"), ("sla_state", "late-ish")):
        body = assert_problem(api.get("/v1/leads", params={name: value}, headers=AUTH), 422)
        assert body["errors"][0]["path"] == name and body["errors"][0]["allowed"]
        assert value in body["detail"]
    body = assert_problem(api.get("/v1/leads", params={"status": "hot"}, headers=AUTH), 422)
    assert body["errors"][0]["allowed"] == ["bad_lead", "nurture", "mql", "sql"]
    assert_problem(api.get("/v1/leads", params={"limit": 501}, headers=AUTH), 400)
    assert_problem(api.get("/v1/leads", params={"limit": 0}, headers=AUTH), 400)
    assert_problem(api.get("/v1/leads", params={"since": "2026-01-01T00:00:00"},
                           headers=AUTH), 422)
    assert_problem(api.get("/v1/leads", params={"since": "2026-02-01T00:00:00Z",
                                                "until": "2026-01-01T00:00:00Z"},
                           headers=AUTH), 422)
    # unknown values of the open filters simply match nothing
    assert _list(api, owner="nobody")["items"] == []


def test_moves_leave_the_old_index(api: httpx.Client, redis_client: redis.Redis) -> None:
    queued = _post(api, campaign="junk")  # in queue review, no owner
    lead_id = queued["lead_id"]
    assert _ids(_list(api, queue="review")) == [lead_id]
    # the owner takes it from the queue (owner.lua): out of the queue index, into the owner's
    taken = api.post(f"/v1/leads/{lead_id}/accept", json={"rep": "r2"}, headers=AUTH)
    assert taken.status_code == 200, taken.text
    assert _ids(_list(api, queue="review")) == []
    assert _ids(_list(api, owner="r2")) == [lead_id]
    assert _ids(_list(api, "/v1/reps/r2/leads")) == [lead_id]
    assert _list(api, owner="r2")["items"][0]["state"] == "accepted"
    # a pool lead rejected to a queue: leaves its owner's and its pool's index
    pooled = _post(api)
    owner = pooled["assignment"]["owner"]
    assert pooled["lead_id"] in _ids(_list(api, owner=owner))
    rejected = api.post(f"/v1/leads/{pooled['lead_id']}/reject",
                        json={"rep": owner, "reason": "not_ready"},
                        headers=AUTH)
    assert rejected.status_code == 200, rejected.text
    assert pooled["lead_id"] not in _ids(_list(api, owner=owner))
    assert pooled["lead_id"] not in _ids(_list(api, sla_state="pending"))
    now = _list(api, status="nurture")["items"]  # recycled to nurture: a new status
    assert [r["lead_id"] for r in now] == [pooled["lead_id"]] and now[0]["owner"] is None
    assert now[0]["queue"] and _ids(_list(api, queue=now[0]["queue"])) == [pooled["lead_id"]]
    members = [m.decode() for m in redis_client.zrange("lr:{lr}:lx", 0, -1)]
    mine = [m for m in members if m.endswith(pooled["lead_id"])]
    assert not any(m.startswith(f"o\x1f{owner}\x1f") for m in mine)


def test_queues_with_ages(api: httpx.Client) -> None:
    a = _post(api, campaign="junk")
    b = _post(api, campaign="junk")
    queues = {q["name"]: q for q in _list_raw(api, "/v1/queues")}
    assert {"review", "unassigned", "capped-overflow"} <= set(queues)
    assert queues["review"]["size"] == 2 and queues["review"]["oldest_age_seconds"] >= 0
    assert queues["unassigned"]["size"] == 0 and queues["unassigned"]["oldest_at"] is None
    page = _list(api, "/v1/queues/review", limit=1)
    assert page["size"] == 2 and [i["lead"]["lead_id"] for i in page["items"]] == [a["lead_id"]]
    assert page["items"][0]["age_seconds"] >= 0
    rest = _list(api, "/v1/queues/review", limit=1, cursor=page["next_cursor"])
    assert [i["lead"]["lead_id"] for i in rest["items"]] == [b["lead_id"]]
    assert _list(api, "/v1/queues/nothing-here")["items"] == []


def _list_raw(api: httpx.Client, path: str) -> list[dict[str, Any]]:
    response = api.get(path, headers=AUTH)
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


def test_reps_and_pools_live_facts(api: httpx.Client) -> None:
    assert api.put("/v1/reps/r1", json={"status": "away"}, headers=AUTH).status_code == 200
    got = _post(api)  # rr: r1 away → r2 or r3
    reps = {r["id"]: r for r in _list_raw(api, "/v1/reps")}
    assert {"r1", "r2", "w1", "owner1"} <= set(reps)
    assert reps["r1"]["status"] == "away" and reps["r1"]["available_now"] is False
    assert "away" in reps["r1"]["why_not"]
    owner = got["assignment"]["owner"]
    assert reps[owner]["today"] == 1 and reps[owner]["open_leads"] == 1
    assert reps[owner]["pools"] == {"r2": ["ll", "rr"], "r3": ["rr"]}[owner]
    assert reps["w1"]["pools"] == ["wrr"] and reps["owner1"]["pools"] == []
    assert reps["r1"]["next_working_hours"] is None  # works around the clock
    pools = {p["id"]: p for p in _list_raw(api, "/v1/pools")}
    assert set(pools) == {"rr", "wrr", "capped", "ll"}
    rr = pools["rr"]
    assert rr["used_today"] == 1 and rr["distribution"][owner] == 1
    assert rr["eligible_now"] == 2
    r1 = next(m for m in rr["members"] if m["rep"] == "r1")
    assert r1["eligible"] is False and "away" in r1["why_not"]
    assert_problem(api.get("/v1/reps/nobody/leads", headers=AUTH), 404)


def test_reads_need_the_admin_token_or_a_viewer_key(api: httpx.Client) -> None:
    paths = ["/v1/leads", "/v1/queues", "/v1/queues/review", "/v1/reps", "/v1/reps/r1/leads",
             "/v1/pools", "/v1/accounts"]
    for path in paths:
        assert_problem(api.get(path), 401)
        assert_problem(api.get(path, headers={"Authorization": "Bearer wrong"}), 401)
    keys = {}
    for scope in ("viewer", "intake"):
        created = api.post("/v1/admin/keys", headers=AUTH,
                           json={"source": "*", "scopes": [scope], "name": scope})
        assert created.status_code == 201, created.text
        keys[scope] = {"Authorization": f"Bearer {created.json()['key']}"}
    for path in paths:
        assert api.get(path, headers=keys["viewer"]).status_code == 200, path
        assert_problem(api.get(path, headers=keys["intake"]), 403)
    # a viewer cannot import
    assert_problem(api.post("/v1/accounts:import", content=b"domain,owner\na.example,r1\n",
                            headers={**keys["viewer"], "Content-Type": "text/csv"}), 403)


def test_a_requalified_lead_moves_to_its_new_status_and_grade(api: httpx.Client) -> None:
    posted = _post(api, email="rise@up.example")  # mql, 55 points: grade B
    assert _ids(_list(api, status="mql")) == [posted["lead_id"]]
    event = api.post("/v1/events", json={"email": "rise@up.example", "event": "demo_requested",
                                         "messageId": "m1"})
    assert event.status_code == 202, event.text
    assert event.json()["lead"]["outcome"] == "requalified"
    assert _ids(_list(api, status="mql")) == []
    assert _ids(_list(api, status="sql")) == [posted["lead_id"]]
    assert _ids(_list(api, grade="A")) == [posted["lead_id"]]  # 85 points
    assert _ids(_list(api, grade="B")) == []


def test_erased_leads_are_in_no_index(api: httpx.Client, redis_client: redis.Redis) -> None:
    gone = _post(api, email="forget@me.example", external_id="crm-gone")
    kept = _post(api, email="keep@me.example")
    erased = api.delete("/v1/people/forget@me.example", headers=AUTH)
    assert erased.status_code == 200, erased.text
    assert _ids(_list(api)) == [kept["lead_id"]]
    assert _ids(_list(api, q="crm-gone")) == [] and _ids(_list(api, q="forget@me.example")) == []
    members = redis_client.zrange("lr:{lr}:lx", 0, -1)
    assert members and not [m for m in members if gone["lead_id"].encode() in m]
    assert not [m for m in members if b"crm-gone" in m]


def test_lists_stop_at_the_retention(start_service: Any) -> None:
    from _service import Clock

    clock = Clock()
    with start_service(clock=clock, decision_retention=3600).client() as api:
        old = _post(api)
        clock.offset = dt.timedelta(minutes=59)
        new = _post(api)
        assert _ids(_list(api)) == [new["lead_id"], old["lead_id"]]
        clock.offset = dt.timedelta(minutes=61)
        assert _ids(_list(api)) == [new["lead_id"]]
        assert _ids(_list(api, pool="rr")) == [new["lead_id"]]
        assert _all(api, status="mql", pool="rr", limit=1) == [new["lead_id"]]


def test_list_indexes_can_be_turned_off(start_service: Any,
                                        redis_client: redis.Redis) -> None:
    with start_service(list_indexes=False).client() as api:
        _post(api)
        assert redis_client.exists("lr:{lr}:lx") == 0
        for path in ("/v1/leads", "/v1/queues", "/v1/queues/review", "/v1/reps/r1/leads"):
            body = assert_problem(api.get(path, headers=AUTH), 409)
            assert "LEADROUTER_LIST_INDEXES" in body["detail"]
        assert api.get("/v1/reps", headers=AUTH).status_code == 200
