"""The console's lead page over plain HTTP against a real service and Valkey: the decision,
the waterfall adding up to the score, the routing path, why X why not Y from the recorded
pick, the SLA clock and history, and the owner actions (admin only, checked on the server)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
from _console import create_key, csrf_of, sign_in
from _service import ADMIN_TOKEN, AUTH, lead

POINTS = re.compile(r'data-points="([-0-9.e]+)"')
TOTAL = re.compile(r'data-total="([-0-9.e]+)"')


def _route(c: httpx.Client, **fields: Any) -> dict[str, Any]:
    r = c.post("/v1/leads", json=lead(**fields), headers=AUTH)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def test_lead_page_shows_waterfall_path_why_not_and_history(
        start_service: Callable[..., Any]) -> None:
    with start_service().client() as c:
        assert c.put("/v1/reps/r2", json={"status": "out_of_office",
                                          "until": "2031-02-03T04:05:00Z"},
                     headers=AUTH).status_code == 200
        _route(c, email="one@acme.example")
        d = _route(c, email="two@acme.example")
        assert sign_in(c, ADMIN_TOKEN).status_code == 303
        page = c.get(f"/ui/leads/{d['lead_id']}")
        assert page.status_code == 200, page.text
        html = page.text
        points = [float(x) for x in POINTS.findall(html)]
        assert points == [c["points"] for c in d["score"]["contributions"]]
        assert sum(points) == float(TOTAL.search(html).group(1)) == d["score"]["total"]  # type: ignore[union-attr]
        assert "sum to the stored score" in html
        assert "5 earlier rule(s) did not match" in html  # assignment: to-rr is the 6th
        assert "campaign == &#34;wrr&#34;" in html or 'campaign == &quot;wrr&quot;' in html
        assert "excluded: out of office until 2031-02-03 04:05 UTC" in html
        assert "picked by round_robin" in html
        assert "sla-mql" in html and "left" in html
        assert "assigned" in html and "created" in html


def test_owner_action_from_the_page_and_a_viewer_refused(
        start_service: Callable[..., Any]) -> None:
    server = start_service()
    with server.client() as admin, server.client() as viewer:
        d = _route(admin, email="act2@acme.example")
        owner = d["assignment"]["owner"]
        viewer_key, _id = create_key(admin, AUTH, "viewer", name="ops viewer")
        sign_in(admin, ADMIN_TOKEN)
        sign_in(viewer, viewer_key)
        url = f"/ui/leads/{d['lead_id']}"
        vpage = viewer.get(url)
        assert vpage.status_code == 200 and "Signed in as a viewer" in vpage.text
        # the viewer forges the form anyway: refused on the server, nothing changes
        r = viewer.post(f"{url}/act", data={"_csrf": csrf_of(vpage.text), "action": "accept",
                                            "rep": owner})
        assert r.status_code == 403, r.text
        assert admin.get(f"/v1/leads/{d['lead_id']}", headers=AUTH).json()["sla"]["state"] \
            == "pending"
        page = admin.get(url)
        token = csrf_of(page.text)
        r = admin.post(f"{url}/act", data={"_csrf": token, "action": "accept", "rep": "r9"})
        assert r.status_code == 409 and "current owner" in r.text
        r = admin.post(f"{url}/act", data={"_csrf": token, "action": "accept", "rep": owner})
        assert r.status_code == 303 and r.headers["location"] == f"{url}?done=accept"
        after = admin.get(r.headers["location"]).text
        assert "Accepted." in after and "accepted" in after and "admin-token" in after
        stored = admin.get(f"/v1/leads/{d['lead_id']}", headers=AUTH).json()
        assert stored["sla"]["state"] in ("met", "stopped")
        assert stored["history"][-1]["event"] == "accepted"
        r = admin.post(f"{url}/act", data={"_csrf": token, "action": "reject", "rep": owner,
                                           "reason": "no_such_reason"})
        assert r.status_code == 422 and "use one of" in r.text


def test_missing_lead_is_a_404_page(start_service: Callable[..., Any]) -> None:
    with start_service().client() as c:
        sign_in(c, ADMIN_TOKEN)
        r = c.get("/ui/leads/ld_nope")
        assert r.status_code == 404 and "No lead" in r.text


def test_other_running_rules_are_said_not_guessed(start_service: Callable[..., Any],
                                                  tmp_path: Any) -> None:
    from _service import write_rules

    rules_dir = write_rules(tmp_path / "rules")
    server = start_service(rules_dir=str(rules_dir))
    with server.client() as c:
        assert c.put("/v1/reps/r2", json={"status": "away"}, headers=AUTH).status_code == 200
        d = _route(c, email="old@acme.example")
        routing = rules_dir / "routing.yaml"
        routing.write_text(routing.read_text().replace("[r1, r2, r3]", "[r3, r2, r1]"))
        r = c.post("/v1/admin/rules/reload", headers=AUTH)
        assert r.status_code == 200, r.text
        assert c.get("/v1/rules").json()["version"] != d["rules_version"]
        sign_in(c, ADMIN_TOKEN)
        html = c.get(f"/ui/leads/{d['lead_id']}").text
        assert 'id="rules-changed"' in html and d["rules_version"][:12] in html
        assert "earlier rule(s) did not match" not in html  # not listed from other rules
        assert "excluded: away" in html  # the recorded facts still are
        assert "eligible as far as recorded" in html


def test_reroute_from_the_page_repicks_in_the_named_pool(
        start_service: Callable[..., Any]) -> None:
    with start_service().client() as c:
        d = _route(c, email="wrong@acme.example")
        assert d["assignment"]["pool"] == "rr"
        sign_in(c, ADMIN_TOKEN)
        url = f"/ui/leads/{d['lead_id']}"
        token = csrf_of(c.get(url).text)
        r = c.post(f"{url}/act", data={"_csrf": token, "action": "reroute",
                                       "rep": d["assignment"]["owner"]})
        assert r.status_code == 422 and "pick the pool" in r.text
        r = c.post(f"{url}/act", data={"_csrf": token, "action": "reroute", "pool": "wrr",
                                       "rep": d["assignment"]["owner"]})
        assert r.status_code == 303 and r.headers["location"] == f"{url}?done=reroute"
        stored = c.get(f"/v1/leads/{d['lead_id']}", headers=AUTH).json()
        assert stored["assignment"]["pool"] == "wrr"
        assert stored["assignment"]["owner"] in ("w1", "w2", "w3")
        html = c.get(r.headers["location"]).text
        assert "Re-routed." in html and "The lead has moved since" in html
        assert f"now owned by <b>{stored['assignment']['owner']}</b>" in html
