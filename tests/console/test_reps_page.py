"""Reps & pools over plain HTTP against a real service and Valkey: live status, today's
counts, the pools' eligibility and distribution; setting a rep out of office from the page
(admin) changes the pool's eligibility, a viewer's attempt is refused on the server."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from _console import create_key, csrf_of, sign_in
from _service import ADMIN_TOKEN, AUTH, lead


def _eligibility(html: str, pool: str, rep: str) -> str:
    section = html.split(f'id="pool-{pool}"', 1)[1].split("</section>", 1)[0]
    row = section.split(f'data-rep="{rep}"', 1)[1].split("</tr>", 1)[0]
    found = re.search(r'class="result eligibility">(.*?)</td>', row, re.S)
    assert found
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def test_set_out_of_office_from_the_page_changes_the_pool(
        start_service: Callable[..., Any]) -> None:
    server = start_service()
    with server.client() as admin, server.client() as viewer:
        for i in range(3):
            assert admin.post("/v1/leads", json=lead(email=f"r{i}@acme.example"),
                              headers=AUTH).status_code == 201
        key, _ = create_key(admin, AUTH, "viewer")
        sign_in(admin, ADMIN_TOKEN)
        sign_in(viewer, key)
        html = admin.get("/ui/reps").text
        assert _eligibility(html, "rr", "r2") == "eligible"
        assert "r1 (weight 1)" in html  # the distribution chart, weights shown
        assert re.search(r'<title>r2 \(weight 1\): 1 today</title>', html)
        # a viewer sees the page but cannot change anything, even with a forged form
        vhtml = viewer.get("/ui/reps").text
        assert "/ui/reps/r2/status" not in vhtml
        r = viewer.post("/ui/reps/r2/status", data={"_csrf": csrf_of(vhtml),
                                                   "status": "out_of_office"})
        assert r.status_code == 403
        assert admin.get("/v1/reps/r2", headers=AUTH).json()["live"]["status"] == "available"
        r = admin.post("/ui/reps/r2/status", data={"_csrf": csrf_of(html),
                                                  "status": "out_of_office",
                                                  "until": "2031-05-06T07:08"})
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/reps?done=r2")
        after = admin.get(r.headers["location"]).text
        assert "Saved r2" in after
        assert _eligibility(after, "rr", "r2") == "no: out of office until 2031-05-06 07:08 UTC"
        assert _eligibility(after, "ll", "r2") == \
            "no: out of office until 2031-05-06 07:08 UTC"
        live = admin.get("/v1/reps/r2", headers=AUTH).json()["live"]
        assert live["status"] == "out_of_office" and live["until"].startswith("2031-05-06T07:08")
        r = admin.post("/ui/reps/r2/status", data={"_csrf": csrf_of(html), "status": "gone"})
        assert r.status_code == 422 and "use one of" in r.text
