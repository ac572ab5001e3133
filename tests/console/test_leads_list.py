"""The leads list and the queues pages over plain HTTP against a real service and Valkey:
filters (a bookmarkable GET form), newest first, next page by cursor, the htmx fragment, bad
filter values; queues with their sizes and what waits in one, oldest first."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
from _console import csrf_of, sign_in
from _service import ADMIN_TOKEN, AUTH, lead

ROW = re.compile(r'<tr data-lead="([^"]+)">')


def _route(c: httpx.Client, n: int, **fields: Any) -> list[str]:
    ids = []
    for i in range(n):
        r = c.post("/v1/leads", json=lead(email=f"l{i}.{fields.get('campaign', 'x')}"
                                              "@acme.example", **fields), headers=AUTH)
        assert r.status_code == 201, r.text
        ids.append(r.json()["lead_id"])
    return ids


def test_filter_to_a_queue_newest_first_and_pages(start_service: Callable[..., Any]) -> None:
    with start_service().client() as c:
        routed = _route(c, 2)
        review = _route(c, 3, campaign="junk")  # bad_lead → queue review
        sign_in(c, ADMIN_TOKEN)
        everything = c.get("/ui/leads")
        assert everything.status_code == 200
        assert ROW.findall(everything.text) == [*reversed(review), *reversed(routed)]
        page = c.get("/ui/leads", params={"queue": "review", "limit": "2"})
        assert page.status_code == 200
        assert ROW.findall(page.text) == [review[2], review[1]]
        nxt = re.search(r'<a rel="next" href="([^"]+)"', page.text)
        assert nxt
        url = nxt.group(1).replace("&amp;", "&")
        assert "queue=review" in url and "cursor=" in url and "limit=2" in url
        second = c.get(url)
        assert ROW.findall(second.text) == [review[0]]
        assert 'rel="next"' not in second.text
        # htmx asks for the table alone
        frag = c.get("/ui/leads", params={"status": "bad_lead"},
                     headers={"HX-Request": "true", "HX-Target": "leads-table"})
        assert frag.text.lstrip().startswith('<section class="card" id="leads-table">')
        assert "<html" not in frag.text and ROW.findall(frag.text) == list(reversed(review))
        bad = c.get("/ui/leads", params={"status": "bogus"})
        assert bad.status_code == 422 and "is not one of" in bad.text
        forged = c.get("/ui/leads", params={"queue": "review", "cursor": "forged"})
        assert forged.status_code == 400 and "stale" in forged.text
        when = c.get("/ui/leads", params={"since": "yesterday"})
        assert when.status_code == 422


def test_queues_and_what_waits(start_service: Callable[..., Any]) -> None:
    with start_service().client() as c:
        review = _route(c, 2, campaign="junk")
        sign_in(c, ADMIN_TOKEN)
        html = c.get("/ui/queues").text
        row = html.split('data-queue="review"', 1)[1].split("</tr>", 1)[0]
        assert '<td class="size">2</td>' in row
        q = c.get("/ui/queues/review")
        assert q.status_code == 200
        assert ROW.findall(q.text) == review  # oldest first
        # an admin takes the oldest for a rep: the owner action accept on a queued lead
        r = c.post(f"/ui/leads/{review[0]}/act", data={"_csrf": csrf_of(q.text),
                                                       "action": "accept", "rep": "r1"})
        assert r.status_code == 303, r.text
        stored = c.get(f"/v1/leads/{review[0]}", headers=AUTH).json()
        assert stored["assignment"]["owner"] == "r1"
        assert ROW.findall(c.get("/ui/queues/review").text) == review[1:]
