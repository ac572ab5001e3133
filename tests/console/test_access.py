"""Signing in and out of the console over plain HTTP, against a real service and Valkey: the
cookie's attributes, what a wrong token, a missing CSRF token, a viewer's change and a revoked
key get, and the page shown while no credential is configured."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from _console import create_key, csrf_of, sign_in
from _service import ADMIN_TOKEN, AUTH, Clock


def test_admin_token_signs_in_and_out(start_service: Callable[..., Any]) -> None:
    with start_service().client() as c:
        assert c.get("/ui/status").status_code == 303  # not signed in: to the sign-in page
        r = sign_in(c, ADMIN_TOKEN)
        assert r.status_code == 303 and r.headers["location"] == "/ui/status"
        cookie = r.headers["set-cookie"].lower()
        assert "lr_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        assert "secure" not in cookie  # plain http here
        page = c.get("/ui/status")
        assert page.status_code == 200 and "admin token" in page.text
        assert c.get("/ui").headers["location"] == "/ui/leads"  # the console opens on leads
        r = c.post("/ui/logout", data={"_csrf": csrf_of(page.text)})
        assert r.status_code == 303
        assert c.get("/ui/status").status_code == 303


def test_wrong_token_is_refused(start_service: Callable[..., Any]) -> None:
    with start_service().client() as c:
        r = sign_in(c, "not-the-token")
        assert r.status_code == 401 and "Wrong token or key" in r.text
        assert "lr_session" not in c.cookies
        assert c.get("/ui/status").status_code == 303


def test_forged_cookie_is_not_a_session(start_service: Callable[..., Any]) -> None:
    with start_service().client() as c:
        c.cookies.set("lr_session", "admin", path="/ui")
        r = c.get("/ui/status")
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")


def test_post_without_csrf_token_is_refused(start_service: Callable[..., Any]) -> None:
    with start_service().client() as c:
        sign_in(c, ADMIN_TOKEN)
        r = c.post("/ui/logout", data={})
        assert r.status_code == 403 and r.json()["title"] == "CSRF token missing or wrong"
        r = c.post("/ui/logout", data={"_csrf": "guess"})
        assert r.status_code == 403
        assert c.get("/ui/status").status_code == 200  # still signed in


def test_sign_in_form_needs_its_own_csrf_cookie(start_service: Callable[..., Any]) -> None:
    with start_service().client() as c:
        c.get("/ui/login")
        c.cookies.clear()  # a post from another site carries no cookie of ours
        r = c.post("/ui/login", data={"token": ADMIN_TOKEN, "_csrf": "x"})
        assert r.status_code == 403 and "lr_session" not in c.cookies


def test_viewer_key_signs_in_and_a_revoked_key_ends_its_session(
        start_service: Callable[..., Any]) -> None:
    server = start_service()
    with server.client() as admin, server.client() as c:
        key, key_id = create_key(admin, AUTH, "viewer", name="Ana")
        r = sign_in(c, key)
        assert r.status_code == 303
        page = c.get("/ui/status")
        assert page.status_code == 200 and "Ana" in page.text and "viewer" in page.text
        assert admin.delete(f"/v1/admin/keys/{key_id}", headers=AUTH).status_code in (200, 204)
        assert c.get("/ui/status").status_code == 303  # the next request ends it


def test_key_without_viewer_scope_cannot_sign_in(start_service: Callable[..., Any]) -> None:
    server = start_service()
    with server.client() as admin, server.client() as c:
        key, _ = create_key(admin, AUTH, "intake")
        r = sign_in(c, key)
        assert r.status_code == 403 and "lacks the &#39;viewer&#39; scope" in r.text


def test_console_is_off_without_credentials(start_service: Callable[..., Any]) -> None:
    with start_service(admin_token=None).client() as c:
        for path in ("/ui", "/ui/login", "/ui/status"):
            r = c.get(path)
            assert r.status_code == 403 and "The console is off" in r.text, path
            assert "LEADROUTER_ADMIN_TOKEN" in r.text


def test_secure_cookie_behind_https(start_service: Callable[..., Any]) -> None:
    with start_service(public_url="https://leads.example.com").client() as c:
        r = sign_in(c, ADMIN_TOKEN)
        assert "secure" in r.headers["set-cookie"].lower()


def test_viewer_is_refused_a_change_on_the_server(start_service: Callable[..., Any]) -> None:
    server = start_service()
    with server.client() as admin, server.client() as c:
        key, _ = create_key(admin, AUTH, "viewer")
        sign_in(c, key)
        token = csrf_of(c.get("/ui/rules/playground").text)
        r = c.post("/ui/rules/replay", data={"_csrf": token, "directory": "rules"})
        assert r.status_code == 403 and r.json()["type"].endswith("console-role")
        assert c.get("/ui/rules/replay").status_code == 403
        # the same request from an admin session gets through the role check
        sign_in(admin, ADMIN_TOKEN)
        token = csrf_of(admin.get("/ui/rules/replay").text)
        r = admin.post("/ui/rules/replay", data={"_csrf": token, "directory": "/nonexistent"})
        assert r.status_code == 200 and 'role="alert"' in r.text


def test_session_expires(start_service: Callable[..., Any]) -> None:
    clock = Clock()
    with start_service(clock=clock).client() as c:
        sign_in(c, ADMIN_TOKEN)
        clock.advance(hours=7, minutes=59)
        assert c.get("/ui/status").status_code == 200
        clock.advance(minutes=2)  # 8 hours after signing in
        assert c.get("/ui/status").status_code == 303


def test_guessing_tokens_is_rate_limited(start_service: Callable[..., Any]) -> None:
    with start_service().client() as c:
        codes = [sign_in(c, f"guess-{i}").status_code for i in range(11)]
        assert codes == [401] * 10 + [429]
        r = sign_in(c, ADMIN_TOKEN)  # the right token waits too
        assert r.status_code == 429 and "Too many sign-in attempts" in r.text


def test_a_post_after_the_session_ended_goes_to_sign_in(
        start_service: Callable[..., Any]) -> None:
    with start_service().client() as c:
        sign_in(c, ADMIN_TOKEN)
        token = csrf_of(c.get("/ui/status").text)
        c.post("/ui/logout", data={"_csrf": token})
        r = c.post("/ui/logout", data={"_csrf": token})  # an old tab's button
        assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=/ui"
        r = c.get("/ui/sla?since=24h")
        assert r.headers["location"] == "/ui/login?next=/ui/sla%3Fsince%3D24h"


def test_htmx_request_without_session_redirects_the_whole_page(
        start_service: Callable[..., Any]) -> None:
    with start_service().client() as c:
        r = c.post("/ui/rules/playground", data={"lead": "{}"}, headers={"HX-Request": "true"})
        assert r.status_code == 204 and r.headers["hx-redirect"] == "/ui/login?next=/ui"
