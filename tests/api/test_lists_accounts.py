"""GET /v1/accounts and POST /v1/accounts:import over real HTTP (router/api/lists.py):
paging, the owner filter, CSV and JSON lines, all-or-nothing with per-line errors, 100k
rows, and owners set before the accounts index (the start-up backfill)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import redis
from _service import AUTH, assert_problem

from router.state import lists as lx
from router.state.store import Store

CSV = {**AUTH, "Content-Type": "text/csv"}
JSONL = {**AUTH, "Content-Type": "application/x-ndjson"}


def _accounts(api: httpx.Client, **params: Any) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    cursor = None
    while True:
        response = api.get("/v1/accounts", headers=AUTH,
                           params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        out += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return out


def test_list_filter_and_page_accounts(api: httpx.Client) -> None:
    for domain, owner in (("b.example", "r1"), ("a.example", "r2"), ("c.example", "r1")):
        assert api.put(f"/v1/accounts/{domain}", json={"owner": owner},
                       headers=AUTH).status_code == 200
    assert _accounts(api, limit=2) == [{"domain": "a.example", "owner": "r2"},
                                       {"domain": "b.example", "owner": "r1"},
                                       {"domain": "c.example", "owner": "r1"}]
    assert [a["domain"] for a in _accounts(api, owner="r1", limit=1)] == ["b.example",
                                                                         "c.example"]
    # a new owner moves the account between owners; a delete takes it out
    assert api.put("/v1/accounts/b.example", json={"owner": "r2"},
                   headers=AUTH).status_code == 200
    assert [a["domain"] for a in _accounts(api, owner="r1")] == ["c.example"]
    assert [a["domain"] for a in _accounts(api, owner="r2")] == ["a.example", "b.example"]
    assert api.delete("/v1/accounts/a.example", headers=AUTH).status_code == 204
    assert [a["domain"] for a in _accounts(api)] == ["b.example", "c.example"]
    assert _accounts(api, owner="nobody") == []
    page = api.get("/v1/accounts", params={"limit": 1}, headers=AUTH).json()
    assert_problem(api.get("/v1/accounts", params={"cursor": page["next_cursor"],
                                                   "owner": "r2"}, headers=AUTH), 400)


def test_import_csv_and_json_lines(api: httpx.Client) -> None:
    body = b"domain,owner\nAcme.example,r1\n\nhttps://www.globex.example/x,r2\n"
    done = api.post("/v1/accounts:import", content=body, headers=CSV)
    assert done.status_code == 200, done.text
    assert done.json() == {"imported": 2, "lines": 2}
    assert api.get("/v1/accounts/acme.example", headers=AUTH).json()["owner"] == "r1"
    lines = "\n".join(json.dumps(x) for x in ({"domain": "acme.example", "owner": "r3"},
                                               {"domain": "initech.example", "owner": "r1"}))
    done = api.post("/v1/accounts:import", content=lines.encode(), headers=JSONL)
    assert done.json() == {"imported": 2, "lines": 2}
    assert _accounts(api) == [{"domain": "acme.example", "owner": "r3"},
                              {"domain": "globex.example", "owner": "r2"},
                              {"domain": "initech.example", "owner": "r1"}]
    # the same file again changes nothing
    assert api.post("/v1/accounts:import", content=lines.encode(),
                    headers=JSONL).json()["imported"] == 0


def test_import_is_all_or_nothing_with_every_bad_line(api: httpx.Client) -> None:
    body = (b"domain,owner\ngood.example,r1\nnot a domain,r1\nfine.example,ghost\n"
            b"good.example,r2\nshort.example\n")
    problem = assert_problem(api.post("/v1/accounts:import", content=body, headers=CSV), 422)
    assert [e["line"] for e in problem["errors"]] == [3, 4, 5, 6]
    assert all(e["fix"] for e in problem["errors"])
    assert "ghost" in problem["errors"][1]["message"]
    assert _accounts(api) == []  # nothing written
    problem = assert_problem(api.post("/v1/accounts:import", content=b'{"domain": 1}\n',
                                      headers=JSONL), 422)
    assert problem["errors"][0]["line"] == 1
    assert_problem(api.post("/v1/accounts:import", content=b"owner\nr1\n", headers=CSV), 422)
    assert_problem(api.post("/v1/accounts:import", content=b"x",
                            headers={**AUTH, "Content-Type": "application/pdf"}), 415)
    assert_problem(api.post("/v1/accounts:import", content=b"domain,owner\n\xff,r1\n",
                            headers=CSV), 400)
    assert_problem(api.post("/v1/accounts:import", content=body,
                            headers={"Content-Type": "text/csv"}), 401)


def test_import_100k_rows(api: httpx.Client, redis_client: redis.Redis) -> None:
    reps = ["r1", "r2", "r3", "w1"]
    body = "domain,owner\n" + "".join(f"d{i}.example,{reps[i % 4]}\n" for i in range(100_000))
    done = api.post("/v1/accounts:import", content=body.encode(), headers=CSV, timeout=120)
    assert done.status_code == 200, done.text
    assert done.json() == {"imported": 100_000, "lines": 100_000}
    assert redis_client.hget("lr:{lr}:account:d99999.example", "owner") == b"w1"
    assert redis_client.zcard("lr:{lr}:accounts") == 200_000
    page = api.get("/v1/accounts", params={"owner": "r2", "limit": 500}, headers=AUTH).json()
    assert len(page["items"]) == 500 and page["next_cursor"]
    assert all(a["owner"] == "r2" for a in page["items"])


def test_accounts_set_before_the_index_are_backfilled(redis_client: redis.Redis,
                                                      redis_url: str) -> None:
    redis_client.hset("lr:{lr}:account:old.example", mapping={"owner": "r1", "at": 1})

    async def run() -> tuple[int | None, int | None, list[tuple[str, str]]]:
        store = await Store.connect(redis_url)
        try:
            first = await lx.backfill_accounts(store, count=10)
            again = await lx.backfill_accounts(store)
            page = await lx.accounts_page(store, owner="r1", after=None, count=10)
            return first, again, page
        finally:
            await store.close()

    first, again, page = asyncio.run(run())
    assert (first, again, page) == (1, None, [("old.example", "r1")])
