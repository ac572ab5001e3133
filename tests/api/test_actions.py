"""Signed action links over real HTTP (router/api/actions.py) on the real service and Valkey:
links in the events a sink receives, accept / reject by link with the owner-action rules,
single use, stale and other reps' links, forged / expired / unknown links, GET changing
nothing, Redis down. The browser: tests/api/test_actions_browser.py."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from _service import ADMIN_TOKEN, AUTH, ThreadServer, free_port, lead, write_rules
from leadrouter_sdk import Event, hookimpl

from router.app.application import create_app
from router.plugins.host import PluginHost
from router.services.action_links import LinkClaims, LinkSigner
from router.settings import Settings
from router.state.embedded import EmbeddedValkey

SECRET = "test-action-secret-0123456789abcdef"


class Collector:
    """A sink plugin that keeps every event it is given."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.lock = threading.Condition()

    @hookimpl
    def on_event(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)
            self.lock.notify_all()

    def wait(self, etype: str, lead_id: str, timeout: float = 10) -> Event:
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                for event in self.events:
                    if event.type == etype and event.lead_id == lead_id:
                        return event
                left = deadline - time.monotonic()
                assert left > 0, f"no {etype} for {lead_id}: {[e.type for e in self.events]}"
                self.lock.wait(left)


class Service:
    def __init__(self, redis_url: str, rules: Path, clock: Any = None,
                 **settings: Any) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        host = PluginHost(event_budget=2.0)
        self.sink = Collector()
        host.register(self.sink, "collector")
        values: dict[str, Any] = {"redis_url": redis_url, "admin_token": ADMIN_TOKEN,
                                  "reload_poll_seconds": 0, "rules_dir": str(rules),
                                  "outbox_poll_seconds": 0.02, "public_url": self.url,
                                  "action_secret": SECRET}
        values.update(settings)
        self.server = ThreadServer(create_app(Settings(**values), plugins=host, clock=clock),
                                   port=port).start()

    def client(self) -> httpx.Client:
        return self.server.client(follow_redirects=False)

    def routed(self, client: httpx.Client, **fields: Any) -> tuple[str, dict[str, str]]:
        made = client.post("/v1/leads", json=lead(**fields))
        assert made.status_code == 201, made.text
        lead_id: str = made.json()["lead_id"]
        links: dict[str, str] = self.sink.wait("lead.assigned", lead_id).data["links"]
        return lead_id, links


@pytest.fixture
def service(redis_url: str, tmp_path: Path) -> Any:
    svc = Service(redis_url, write_rules(tmp_path / "rules"))
    yield svc
    svc.server.stop()


def _path(url: str) -> str:
    return "/a/" + url.rsplit("/a/", 1)[1]


def _page(response: httpx.Response, status: int, *words: str) -> str:
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    text = response.text
    for word in words:
        assert word in text, (word, text[:2000])
    return text


def _stored(client: httpx.Client, lead_id: str) -> dict[str, Any]:
    got = client.get(f"/v1/leads/{lead_id}")
    assert got.status_code == 200
    body: dict[str, Any] = got.json()
    return body


def test_accept_by_link_meets_the_sla_once(service: Service) -> None:
    with service.client() as client:
        lead_id, links = service.routed(client)
        assert set(links) == {"accept", "contacted", "reject", "expires_at"}
        assert all(links[a].startswith(f"{service.url}/a/") for a in ("accept", "reject"))
        before = _stored(client, lead_id)
        owner = before["assignment"]["owner"]
        due = dt.datetime.fromisoformat(before["sla"]["due_at"])
        assert dt.datetime.fromisoformat(links["expires_at"]) == \
            due.replace(microsecond=0) + dt.timedelta(days=1)

        # GET (a mail scanner, the rep opening it) shows a form and changes nothing
        for _ in range(2):
            page = _page(client.get(_path(links["accept"])), 200, "Accept this lead?",
                         owner, "Acme Corp", lead_id, 'method="post"')
            for pii in ("jane", "Jane", "Doe", "VP Sales"):  # no name, email or title
                assert pii not in page
        assert _stored(client, lead_id) == before

        done = client.post(_path(links["accept"]), data={"note": "calling"})
        _page(done, 200, "Accepted within the SLA")
        after = _stored(client, lead_id)
        assert after["sla"]["state"] == "met"
        entry = after["history"][-1]
        assert entry["event"] == "accepted"
        assert (entry["detail"]["by"], entry["detail"]["via"], entry["detail"]["note"]) == \
            (owner, "link", "calling")
        report = client.get("/v1/sla/report", params={"since": "1h"}).json()
        assert report["total"]["accepted_in_time"] == 1

        # used: refused, by POST and by GET, and nothing changes
        _page(client.post(_path(links["accept"])), 410, "used already")
        _page(client.get(_path(links["accept"])), 410, "used already")
        assert _stored(client, lead_id)["history"] == after["history"]
        # the accepted event goes to the sinks without links (nothing left to click)
        assert "links" not in service.sink.wait("lead.accepted", lead_id).data
        # the contacted link still works once (another action of the same rep)
        _page(client.post(_path(links["contacted"])), 200, "Marked as contacted")
        assert _stored(client, lead_id)["history"][-1]["event"] == "contacted"


def test_reject_by_link_needs_a_configured_reason(service: Service) -> None:
    with service.client() as client:
        lead_id, links = service.routed(client)
        page = _page(client.get(_path(links["reject"])), 200, "Reject this lead?",
                     'name="reason"')
        reasons = re.findall(r'<option value="([a-z_]+)"', page)
        assert reasons == ["bad_fit", "no_budget", "not_ready", "duplicate", "spam",
                           "wrong_territory"]  # the rules' reject_reasons, in order
        _page(client.post(_path(links["reject"])), 422, "Choose one of the reasons")
        _page(client.post(_path(links["reject"]), data={"reason": "bored"}), 422,
              "Choose one of the reasons")
        assert _stored(client, lead_id)["history"][-1]["event"] != "recycled"
        _page(client.post(_path(links["reject"]), data={"reason": "no_budget"}), 200,
              "Rejected (no budget)")
        stored = _stored(client, lead_id)
        assert stored["status"] == "nurture"
        entry = stored["history"][-1]
        assert (entry["event"], entry["detail"]["reason"], entry["detail"]["via"]) == \
            ("recycled", "no_budget", "link")
        # the accept link of the same notification: nothing left to accept
        _page(client.post(_path(links["accept"])), 409, "Nothing to do")


def test_a_link_of_an_earlier_or_another_rep_is_refused(service: Service) -> None:
    with service.client() as client:
        lead_id, links = service.routed(client)
        first = _stored(client, lead_id)["assignment"]["owner"]
        moved = client.post(f"/v1/leads/{lead_id}/reject", headers=AUTH,
                            json={"rep": first, "reason": "wrong_territory", "pool": "rr"})
        assert moved.status_code == 200, moved.text
        now = moved.json()["assignment"]["owner"]
        assert now and now != first
        rerouted = service.sink.wait("lead.rerouted", lead_id)
        new_links = rerouted.data["links"]  # the new owner's links
        claims = LinkSigner(SECRET).verify(new_links["accept"].rsplit("/", 1)[1],
                                           dt.datetime.now(dt.UTC))
        assert (claims.rep, claims.lead) == (now, lead_id)

        # the first owner's link: the lead has moved on, and the page says to whom
        _page(client.get(_path(links["contacted"])), 409, "moved on", f"owned by {now}")
        _page(client.post(_path(links["contacted"])), 409, f"owned by {now}")
        # a rep who never owned it (a genuine link, e.g. forwarded to the wrong person)
        other = next(r for r in ("r1", "r2", "r3") if r not in (first, now))
        exp = int(time.time()) + 600
        token = LinkSigner(SECRET).sign(LinkClaims(lead_id, other, "accept", exp, "x1"))
        _page(client.post(f"/a/{token}"), 403, "Not your lead", f"owned by {now}")
        assert _stored(client, lead_id)["history"][-1]["event"] == "rerouted"
        # the current owner's link works
        _page(client.post(_path(new_links["accept"])), 200, "Accepted")


class MovableClock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def test_sla_warning_reaches_the_sink_with_links_once(redis_url: str, tmp_path: Path) -> None:
    clock = MovableClock()
    svc = Service(redis_url, write_rules(tmp_path / "rules"), clock=clock,
                  sla_warn_before=300, sla_poll_seconds=0.05)
    try:
        with svc.client() as client:
            lead_id, _ = svc.routed(client)  # sla-mql: 1 h
            early_id, early = svc.routed(client, email="early@acme.example")
            _page(client.post(_path(early["accept"])), 200, "Accepted")
            clock.now += dt.timedelta(minutes=56)  # 4 min left, warnings 5 min before
            warning = svc.sink.wait("sla.warning", lead_id)
            owner = _stored(client, lead_id)["assignment"]["owner"]
            assert (warning.data["owner"], warning.data["minutes_left"]) == (owner, "4")
            links = warning.data["links"]
            _page(client.post(_path(links["accept"])), 200, "Accepted within the SLA")
            time.sleep(0.5)  # several more polls of the warning worker
            warned = [e.lead_id for e in svc.sink.events if e.type == "sla.warning"]
            assert warned == [lead_id]  # once, and none for the lead accepted before
            assert early_id not in warned
    finally:
        svc.server.stop()


def test_forged_expired_and_unknown_links(service: Service) -> None:
    with service.client() as client:
        lead_id, links = service.routed(client)
        token = _path(links["accept"]).removeprefix("/a/")
        payload, mac = token.split(".")
        for bad in (f"{payload}.{mac[:-3]}AAA", payload, "x", "%20", f"{payload[:-4]}.{mac}",
                    "%C3%A9.%C3%A9", f"{payload}.{mac}.{mac}", "." * 50):
            for method in (client.get, client.post):
                _page(method(f"/a/{bad}"), 400, "not valid")
        signer = LinkSigner(SECRET)
        old = signer.sign(LinkClaims(lead_id, "r1", "accept", int(time.time()) - 1, "x2"))
        _page(client.get(f"/a/{old}"), 410, "expired")
        _page(client.post(f"/a/{old}"), 410, "expired")
        other_secret = LinkSigner("another-secret-0123456789abcdef").sign(
            LinkClaims(lead_id, "r1", "accept", int(time.time()) + 60, "x3"))
        _page(client.post(f"/a/{other_secret}"), 400, "not valid")
        gone = signer.sign(LinkClaims("ld_nosuchlead", "r1", "accept",
                                      int(time.time()) + 60, "x4"))
        _page(client.get(f"/a/{gone}"), 404, "gone")
        _page(client.post(f"/a/{gone}"), 404, "gone")
        assert _stored(client, lead_id)["sla"]["state"] == "pending"
        # not in the API's schema
        assert not any(p.startswith("/a/") for p in client.get("/schema/openapi.json")
                       .json()["paths"])


def test_a_link_for_any_action_and_markup_in_lead_data(service: Service) -> None:
    with service.client() as client:
        lead_id, _ = service.routed(client, company="<b>Evil</b> & Co")
        owner = _stored(client, lead_id)["assignment"]["owner"]
        token = LinkSigner(SECRET).sign(LinkClaims(lead_id, owner, "any",
                                                   int(time.time()) + 600, "any-1"))
        page = _page(client.get(f"/a/{token}"), 200, "Act on this lead", 'name="action"',
                     "&lt;b&gt;Evil&lt;/b&gt; &amp; Co")
        assert "<b>Evil" not in page
        _page(client.post(f"/a/{token}", data={"action": "delete"}), 400, "Choose accept")
        _page(client.post(f"/a/{token}", data={"action": "reject"}), 422, "Choose one")
        _page(client.post(f"/a/{token}", data={"action": "contacted", "reason": ""}), 200,
              "Marked as contacted")
        assert _stored(client, lead_id)["history"][-1]["event"] == "contacted"
        _page(client.post(f"/a/{token}", data={"action": "accept"}), 410, "used already")


def test_without_a_secret_there_are_no_links(redis_url: str, tmp_path: Path) -> None:
    svc = Service(redis_url, write_rules(tmp_path / "rules"), action_secret=None)
    try:
        with svc.client() as client:
            made = client.post("/v1/leads", json=lead()).json()
            assert "links" not in svc.sink.wait("lead.assigned", made["lead_id"]).data
            token = LinkSigner(SECRET).sign(LinkClaims(made["lead_id"], "r1", "accept",
                                                       int(time.time()) + 60, "x"))
            _page(client.get(f"/a/{token}"), 404, "Action links are off")
    finally:
        svc.server.stop()


def test_redis_down_is_a_503_page_with_retry_after(tmp_path: Path) -> None:
    valkey = EmbeddedValkey(tmp_path / "valkey", port=0)
    valkey.start()
    svc = Service(valkey.url, write_rules(tmp_path / "rules"), retry_after_seconds=4)
    try:
        with svc.client() as client:
            _, links = svc.routed(client)
            valkey.stop()
            for method in (client.get, client.post):
                got = method(_path(links["accept"]))
                _page(got, 503, "Try again", "Nothing was changed")
                assert got.headers["retry-after"] == "4"
    finally:
        svc.server.stop()
        valkey.stop()


# --- in a real browser: headless Chromium (tests/_browser.py) ---------------------------------


def _open(page: Any, url: str) -> str:
    page.send("Page.navigate", url=url)
    page.wait_for("Page.loadEventFired")
    text: str = page.js("document.body.innerText")
    return text


def _submit(page: Any) -> str:
    page.js("document.querySelector('#confirm').click()")
    page.wait_for("Page.loadEventFired")
    text: str = page.js("document.body.innerText")
    return text


def _shot(page: Any, path: Path) -> None:
    import base64

    data = page.send("Page.captureScreenshot", format="png")["data"]
    path.write_bytes(base64.b64decode(data))
    assert path.stat().st_size > 1000


def test_in_a_browser_accept_reject_and_a_reused_link(service: Service, tmp_path: Path) -> None:
    from _browser import CHROMIUM, chromium
    from _ci import unavailable

    if CHROMIUM is None:
        unavailable("chromium is not installed (apt-get install chromium)")
    with service.client() as client:
        lead_id, links = service.routed(client)
    with chromium() as open_page:
        page = open_page()
        page.send("Page.enable")
        page.send("Runtime.enable")
        page.send("Emulation.setDeviceMetricsOverride", width=820, height=1100,
                  deviceScaleFactor=1, mobile=False)
        shown = _open(page, links["accept"])
        assert "Accept this lead?" in shown and "Acme Corp" in shown
        assert page.js("document.scripts.length") <= 1  # htmx at most: works without it
        _shot(page, tmp_path / "accept-confirm.png")
        done = _submit(page)
        assert "Accepted within the SLA" in done, done
        assert page.js("document.querySelector('section').dataset.page") == "done"
        _shot(page, tmp_path / "accept-done.png")

        shown = _open(page, links["reject"])
        assert "Reject this lead?" in shown
        options = page.js("[...document.querySelectorAll('#reason option')]"
                          ".map(o => o.value)")
        assert "not_ready" in options and "wrong_territory" in options
        page.js("document.querySelector('#reason').value = 'not_ready'")
        _shot(page, tmp_path / "reject-confirm.png")
        done = _submit(page)
        assert "Rejected (not ready)" in done, done
        _shot(page, tmp_path / "reject-done.png")

        again = _open(page, links["accept"])
        assert "used already" in again
        assert page.js("document.querySelector('form')") is None  # nothing to submit
        _shot(page, tmp_path / "reused.png")
    with service.client() as client:
        history = _stored(client, lead_id)["history"]
    assert [h["event"] for h in history][-2:] == ["accepted", "recycled"]
    assert history[-1]["detail"]["reason"] == "not_ready"
    assert {h["detail"].get("via") for h in history[-2:]} == {"link"}
