"""Who is looking at the console: sign-in, the session cookie, CSRF, and the two roles.

* Sign in at ``/ui/login`` with the admin token or an API key with the ``viewer`` or ``admin``
  scope. The browser gets a random session id (cookie ``lr_session``: HttpOnly,
  SameSite=Strict, Secure behind HTTPS); what it stands for lives in Redis
  (router/state/console.py), so the cookie claims nothing by itself.
* Every request checks the session again: a revoked or expired key, or a changed admin token,
  ends its sessions on the next request. Sessions last :data:`SESSION_SECONDS`.
* Dependencies: ``viewer`` (anyone signed in) and ``admin`` (may change things — checked on
  the server for every change route). Every POST carries the session's CSRF token (form field
  ``_csrf`` or header ``X-CSRF-Token``, which the layout sets for htmx); without it, 403.
* No admin token and no key configured: the console is off and says how to turn it on.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import quote

from litestar import MediaType, Request
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.response import Redirect, Response, Template

from router.api.errors import problem
from router.services.keys import ApiKeys, KeyProblem
from router.settings import Settings
from router.state.console import SessionRecord, SessionStore

__all__ = ["COOKIE", "CSRF_FIELD", "LOGIN_COOKIE", "SESSION_SECONDS", "Admin", "ConsoleOff",
           "NotSignedIn", "Req", "Session", "Viewer", "end_session", "exception_handlers",
           "page", "providers", "sign_in", "start_session"]

COOKIE = "lr_session"
LOGIN_COOKIE = "lr_login_csrf"  # the sign-in form's own CSRF token (double-submit)
CSRF_FIELD = "_csrf"
CSRF_HEADER = "x-csrf-token"
SESSION_SECONDS = 8 * 3600
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Req = Request[Any, Any, Any]


class Session:
    """The signed-in user of one request (``viewer``/``admin`` dependencies)."""

    def __init__(self, record: SessionRecord) -> None:
        self.record = record
        self.role = record.role
        self.who = record.who
        self.csrf = record.csrf
        self.is_admin = record.role == "admin"

    @property
    def label(self) -> str:
        """What the header shows: the admin token, or the key's name and id."""
        if self.who == "admin-token":
            return "admin token"
        return f"{self.record.name} ({self.who})" if self.record.name else self.who


# What a console handler declares: ``viewer: Viewer`` (anyone signed in) or ``admin: Admin``.
Viewer = NamedDependency[Session]
Admin = NamedDependency[Session]


class NotSignedIn(Exception):
    """No valid session: GET pages redirect to the sign-in page."""


class ConsoleOff(Exception):
    """No admin token and no key configured: the console explains how to turn it on."""


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _sessions(keys: ApiKeys) -> SessionStore:
    return SessionStore(keys.store.store)


def secure(request: Req, settings: Settings) -> bool:
    """Secure cookies when the request came over HTTPS or the public URL is https."""
    return request.url.scheme == "https" or (settings.public_url or "").startswith("https://")


def _cookie(request: Req, settings: Settings, value: str, *, max_age: int) -> Cookie:
    return Cookie(key=COOKIE, value=value, path="/ui", httponly=True, samesite="strict",
                  secure=secure(request, settings), max_age=max_age)


async def console_on(settings: Settings, keys: ApiKeys) -> bool:
    """The console exists once an admin token or any API key is configured."""
    return bool(settings.admin_token) or await keys.configured()


async def sign_in(token: str, settings: Settings, keys: ApiKeys, now_ms: int
                  ) -> SessionRecord:
    """The session a token opens, or :class:`KeyProblem` saying why not (401/403)."""
    token = token.strip()
    csrf = secrets.token_urlsafe(24)
    expires = now_ms + SESSION_SECONDS * 1000
    admin = settings.admin_token
    if admin and hmac.compare_digest(token.encode(), admin.encode()):
        return SessionRecord(role="admin", who="admin-token", csrf=csrf, created_at=now_ms,
                             expires_at=expires, token_digest=_digest(admin))
    if not token:
        raise KeyProblem(401, "paste the admin token or an API key (lrk_...) with the "
                              "'viewer' or 'admin' scope")
    record = await keys.check(token, source="*", scope="viewer", now_ms=now_ms,
                              any_source=True)
    role = "admin" if "admin" in record.scopes else "viewer"
    if record.expires_at is not None:  # a rotated key's session ends with the key
        expires = min(expires, record.expires_at)
    return SessionRecord(role=role, who=record.id, name=record.name, csrf=csrf,
                         created_at=now_ms, expires_at=expires, key_digest=_digest(token))


async def start_session(request: Req, settings: Settings, keys: ApiKeys,
                        record: SessionRecord, now_ms: int, to: str) -> Redirect:
    """Store ``record`` under a new random id and redirect to ``to`` with its cookie."""
    sid = secrets.token_urlsafe(32)
    ttl = max(1, (record.expires_at - now_ms) // 1000)
    await _sessions(keys).put(_digest(sid), record, ttl_s=ttl)
    gone = Cookie(key=LOGIN_COOKIE, value="", path="/ui", max_age=0)
    return Redirect(to, status_code=303,
                    cookies=[_cookie(request, settings, sid, max_age=ttl), gone])


async def end_session(request: Req, settings: Settings, keys: ApiKeys) -> Redirect:
    """Sign out: the stored session is deleted (every worker sees it) and the cookie cleared."""
    sid = request.cookies.get(COOKIE)
    if sid:
        await _sessions(keys).delete(_digest(sid))
    return Redirect("/ui/login?signed_out=1", status_code=303,
                    cookies=[_cookie(request, settings, "", max_age=0)])


async def _still_valid(record: SessionRecord, settings: Settings, keys: ApiKeys,
                       now_ms: int) -> bool:
    if record.expires_at <= now_ms:
        return False
    if record.who == "admin-token":
        admin = settings.admin_token
        return bool(admin) and record.token_digest == _digest(admin or "")
    if record.key_digest is None:
        return False
    key = await keys.store.get(record.key_digest)  # revoked: gone; rotated: expires
    return key is not None and (key.expires_at is None or key.expires_at > now_ms) and \
        key.id == record.who and ("viewer" in key.scopes or "admin" in key.scopes)


async def _csrf_ok(request: Req, expected: str) -> bool:
    given = request.headers.get(CSRF_HEADER)
    if not given and request.content_type[0] in ("application/x-www-form-urlencoded",
                                                  "multipart/form-data"):
        field = (await request.form()).get(CSRF_FIELD)
        given = field if isinstance(field, str) else None
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


async def provide_viewer(request: Req, settings: NamedDependency[Settings],
                         keys: NamedDependency[ApiKeys]) -> Session:
    """Anyone signed in (viewer or admin); every POST must carry the session's CSRF token."""
    if not await console_on(settings, keys):
        raise ConsoleOff
    sid = request.cookies.get(COOKIE)
    if not sid:
        raise NotSignedIn
    sessions = _sessions(keys)
    record = await sessions.get(_digest(sid))
    now_ms = keys.clock.ms()
    if record is None or not await _still_valid(record, settings, keys, now_ms):
        if record is not None:
            await sessions.delete(_digest(sid))
        raise NotSignedIn
    if request.method in _UNSAFE and not await _csrf_ok(request, record.csrf):
        raise problem(403, "CSRF token missing or wrong",
                      "this form was not sent from a page of this console session — reload "
                      "the page and submit it again", kind="csrf")
    return Session(record)


async def provide_admin(viewer: NamedDependency[Session]) -> Session:
    """A signed-in admin (the admin token or an ``admin`` key); viewers get 403."""
    if not viewer.is_admin:
        raise problem(403, "Forbidden", f"signed in as {viewer.label}, a viewer: this change "
                      "needs the admin token or an API key with the 'admin' scope — sign out "
                      "and sign in with one", kind="console-role")
    return viewer


def providers() -> dict[str, Provide]:
    """The console's dependencies: ``viewer`` and ``admin`` (a :class:`Session`)."""
    return {"viewer": Provide(provide_viewer), "admin": Provide(provide_admin)}


def page(request: Req, session: Session | None, template: str, nav: str,
         status_code: int = 200, **context: Any) -> Template:
    """A console page: ``template`` with the user, the CSRF token and the current nav item."""
    return Template(template_name=template, status_code=status_code, media_type=MediaType.HTML,
                    context={
                        "user": session, "csrf_token": session.csrf if session else "",
                        "nav": nav, "csrf_field": CSRF_FIELD,
                        "request_path": request.url.path, **context})


def _to_login(request: Req, _: Exception) -> Response[Any]:
    """To the sign-in page (303; for htmx a 204 with ``HX-Redirect``, which it follows with a
    whole-page load), back here afterwards — a GET page only: a form post is not replayed."""
    target = "/ui"
    if request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    login = f"/ui/login?next={quote(target)}"
    if request.headers.get("hx-request"):  # htmx would follow a 303 and swap the login page in
        return Response(b"", status_code=204, headers={"HX-Redirect": login})
    return Redirect(login, status_code=303)


def _off(request: Req, _: Exception) -> Response[Any]:
    return page(request, None, "console/off.html", "", status_code=403)


def exception_handlers() -> dict[type[Exception] | int, Any]:
    return {NotSignedIn: _to_login, ConsoleOff: _off}
