"""Reps and pools over real HTTP (router/api/reps.py): rep state, absences, pool stats."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import httpx
from _service import AUTH, JSON, Clock, assert_problem, lead

# --- reps ---------------------------------------------------------------------------------------


def test_rep_state_requires_the_admin_token(api: httpx.Client) -> None:
    assert_problem(api.get("/v1/reps/r1"), 401)
    assert_problem(api.put("/v1/reps/r1", json={"status": "away"}), 401)
    assert_problem(api.put("/v1/reps/r1", json={"status": "away"},
                           headers={"Authorization": "Bearer nope"}), 401)
    assert api.get("/v1/reps/r1", headers=AUTH).json()["live"]["status"] == "available"


def test_get_and_put_rep_state(api: httpx.Client) -> None:
    rep = api.get("/v1/reps/r1", headers=AUTH)
    assert rep.status_code == 200, rep.text
    body = rep.json()
    assert (body["id"], body["name"], body["timezone"], body["weight"]) == \
        ("r1", "Rep R1", "UTC", 1)
    assert body["live"]["status"] == "available" and body["available_now"] is True

    put = api.put("/v1/reps/r1", json={"status": "out_of_office",
                                      "until": "2099-01-05T09:00:00Z"}, headers=AUTH)
    assert put.status_code == 200, put.text
    assert put.json()["status"] == "out_of_office"
    assert put.json()["until"].startswith("2099-01-05T09:00:00")
    body = api.get("/v1/reps/r1", headers=AUTH).json()
    assert body["live"]["status"] == "out_of_office" and body["available_now"] is False
    assert body["live"]["updated_at"]
    # other reps are untouched
    assert api.get("/v1/reps/r2", headers=AUTH).json()["available_now"] is True

    assert api.put("/v1/reps/r1", json={"status": "available"}, headers=AUTH).status_code == 200
    body = api.get("/v1/reps/r1", headers=AUTH).json()
    assert body["live"]["status"] == "available" and body["live"]["until"] is None


def test_rep_errors(api: httpx.Client) -> None:
    body = assert_problem(api.get("/v1/reps/nobody", headers=AUTH), 404)
    assert "nobody" in body["detail"]
    assert_problem(api.put("/v1/reps/nobody", json={"status": "away"}, headers=AUTH), 404)
    cases: list[tuple[Any, int, str | None]] = [
        ({"status": "on_holiday"}, 422, "$.status"),
        ({}, 422, None),
        ({"status": "away", "until": "2099-01-01T09:00:00"}, 422, "$.until"),  # no time zone
        ({"status": "away", "until": "next week"}, 422, "$.until"),
        ({"status": "away", "mood": "grumpy"}, 422, "$.mood"),
        ([], 422, None),
    ]
    for payload, status, path in cases:
        body = assert_problem(api.put("/v1/reps/r1", json=payload, headers=AUTH), status)
        if path:
            assert body["errors"][0]["path"] == path, (payload, body)
    assert_problem(api.put("/v1/reps/r1", content=b"{", headers={**AUTH, **JSON}), 400)
    for junk in (b"[" * 50_000 + b"]" * 50_000, b'{"status": "\xff"}', b"\x00", b"NaN"):
        response = api.put("/v1/reps/r1", content=junk, headers={**AUTH, **JSON})
        assert 400 <= response.status_code < 500, (junk[:20], response.text)
    assert api.get("/v1/reps/r1", headers=AUTH).json()["live"]["status"] == "available"


def _owners(client: httpx.Client, n: int, **fields: Any) -> list[str | None]:
    out = []
    for i in range(n):
        response = client.post("/v1/leads", json=lead(email=f"l{i}@x-corp.example", **fields))
        assert response.status_code == 201, response.text
        out.append(response.json()["assignment"]["owner"])
    return out


def _member(stats: dict[str, Any], rep: str) -> dict[str, Any]:
    return next(m for m in stats["members"] if m["rep"] == rep)


def test_away_rep_is_skipped_until_it_comes_back(start_service: Any) -> None:
    clock = Clock()
    server = start_service(clock=clock)
    with server.client() as client:
        until = (clock() + dt.timedelta(minutes=30)).isoformat()
        put = client.put("/v1/reps/r2", json={"status": "away", "until": until}, headers=AUTH)
        assert put.status_code == 200, put.text
        stats = client.get("/v1/pools/rr").json()
        r2 = _member(stats, "r2")
        assert r2["eligible"] is False and "away" in " ".join(r2["why_not"]), r2
        assert r2["status"] == "away"

        owners = _owners(client, 6)
        assert "r2" not in owners
        assert Counter(owners) == {"r1": 3, "r3": 3}

        clock.advance(minutes=31)  # the absence ends by itself
        assert _member(client.get("/v1/pools/rr").json(), "r2")["eligible"] is True
        assert client.get("/v1/reps/r2", headers=AUTH).json()["available_now"] is True
        owners = _owners(client, 6)
        assert "r2" in owners
        # r2 comes back without a backlog: it is not flooded to "catch up"
        assert max(Counter(owners).values()) - min(Counter(owners).values()) <= 1
        assert set(owners) == {"r1", "r2", "r3"}


def test_when_every_member_is_out_the_lead_is_queued_not_lost(api: httpx.Client) -> None:
    for rep in ("r1", "r2", "r3"):
        assert api.put(f"/v1/reps/{rep}", json={"status": "out_of_office"},
                       headers=AUTH).status_code == 200
    response = api.post("/v1/leads", json=lead())
    assert response.status_code == 201
    a = response.json()["assignment"]
    assert a["owner"] is None and a["queue"], a
    history = api.get(f"/v1/leads/{response.json()['lead_id']}").json()["history"]
    assert [h["event"] for h in history] == ["created", "queued"]
    assert api.put("/v1/reps/r3", json={"status": "available"}, headers=AUTH).status_code == 200
    assert api.post("/v1/leads", json=lead()).json()["assignment"]["owner"] == "r3"


# --- pools --------------------------------------------------------------------------------------


def test_pool_stats(api: httpx.Client) -> None:
    empty = api.get("/v1/pools/rr")
    assert empty.status_code == 200, empty.text
    stats = empty.json()
    assert (stats["pool"], stats["strategy"], stats["used_today"], stats["pool_cap"]) == \
        ("rr", "round_robin", 0, None)
    assert [m["rep"] for m in stats["members"]] == ["r1", "r2", "r3"]
    assert all(m["eligible"] and m["in_hours"] for m in stats["members"])

    owners = _owners(api, 4)
    stats = api.get("/v1/pools/rr").json()
    assert stats["used_today"] == 4
    assert stats["last_assigned"] == owners[-1]
    for m in stats["members"]:
        assert m["assigned_in_pool"] == owners.count(m["rep"])
        assert m["assigned_today"] == owners.count(m["rep"])
        assert m["open"] == owners.count(m["rep"])

    capped = api.get("/v1/pools/capped").json()
    assert capped["strategy"] == "round_robin"
    assert {m["rep"]: m["daily_cap"] for m in capped["members"]} == {"c1": 40, "c2": 40}
    wrr = api.get("/v1/pools/wrr").json()
    assert {m["rep"]: m["weight"] for m in wrr["members"]} == {"w1": 3, "w2": 2, "w3": 1}
    body = assert_problem(api.get("/v1/pools/nowhere"), 404)
    assert "rr" in body["detail"]  # lists the known pools


def test_least_loaded_pool_prefers_the_rep_with_fewer_open_leads(api: httpx.Client) -> None:
    # r1 gets three leads through the round-robin pool first... (r1, r2, r3, r1)
    _owners(api, 4)
    # ...so the least-loaded pool (r1, r2) hands the next ones to r2 until they are even
    owners = _owners(api, 1, campaign="ll")
    assert owners == ["r2"]
    stats = api.get("/v1/pools/ll").json()
    assert stats["strategy"] == "least_loaded"
    assert {m["rep"]: m["open"] for m in stats["members"]} == {"r1": 2, "r2": 2}
