"""``/ui/login``, ``/ui/logout`` and ``/ui``: signing in and out of the console.

Each sign-in, failed sign-in and sign-out is in the audit log (``console.signin`` with the
admin token or key id, ``console.signin_failed`` with the client address and an API key's
public prefix only — never the token —, ``console.signout``)."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from litestar import get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from router.api.console._session import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    ConsoleOff,
    Req,
    Viewer,
    console_on,
    end_session,
    page,
    secure,
    sign_in,
    start_session,
)
from router.intake.config import RateSpec
from router.intake.mapping import IntakeError
from router.services.audit import AuditLog
from router.services.keys import ApiKeys, KeyProblem
from router.services.ratelimit import RateLimits, client_address
from router.settings import Settings
from router.state.audit import Actor

__all__ = ["LOGIN_RATE", "handlers"]

LOGIN_RATE = RateSpec(limit=10, period=60)  # sign-in attempts per client address


def _next(value: object) -> str:
    """Where to go after signing in: a console path only (no open redirect)."""
    text = value if isinstance(value, str) else ""
    ok = text.startswith("/ui") and not text.startswith("//") and "\\" not in text
    return text if ok else "/ui"


def _login_page(request: Req, settings: Settings, *, error: str = "", status_code: int = 200,
                next_: str = "/ui") -> Template:
    token = secrets.token_urlsafe(24)
    response = page(request, None, "console/login.html", "login", status_code=status_code,
                    login_csrf=token, error=error, next=next_,
                    signed_out=bool(request.query_params.get("signed_out")))
    response.cookies.append(Cookie(key=LOGIN_COOKIE, value=token, path="/ui", httponly=True,
                                   samesite="strict", secure=secure(request, settings),
                                   max_age=3600))
    return response


@get("/login", include_in_schema=False)
async def login_form(request: Req, settings: NamedDependency[Settings],
                     keys: NamedDependency[ApiKeys]) -> Template:
    if not await console_on(settings, keys):
        raise ConsoleOff
    return _login_page(request, settings, next_=_next(request.query_params.get("next")))


def _key_prefix(token: str) -> str | None:
    """What a failed sign-in's audit entry keeps of the token: an API key's public prefix
    (``lrk_`` and 4 characters, as the key list shows it), never more; nothing otherwise."""
    token = token.strip()
    return token[:8] if token.startswith("lrk_") else None


@post("/login", include_in_schema=False, status_code=303)
async def login(request: Req, settings: NamedDependency[Settings],
                keys: NamedDependency[ApiKeys], rate_limits: NamedDependency[RateLimits],
                audit: NamedDependency[AuditLog]) -> Any:
    if not await console_on(settings, keys):
        raise ConsoleOff
    form = await request.form()
    to = _next(form.get("next"))
    client = request.client.host if request.client else None
    addr = client_address(client, request.headers, settings.trusted_proxies)
    try:  # guessing tokens: LOGIN_RATE attempts per address
        await rate_limits.enforce(f"ui-login:ip:{addr}", LOGIN_RATE)
    except IntakeError as exc:
        return _login_page(request, settings, status_code=429, next_=to,
                           error="Too many sign-in attempts from your address — wait a "
                                 f"minute and try again ({exc.detail})")
    sent, expected = form.get(CSRF_FIELD), request.cookies.get(LOGIN_COOKIE, "")
    if not (isinstance(sent, str) and expected
            and hmac.compare_digest(sent.encode(), expected.encode())):
        return _login_page(request, settings, status_code=403, next_=to,
                           error="This sign-in form expired or came from another site — "
                                 "sign in again from this page.")
    token = form.get("token")
    token = token if isinstance(token, str) else ""
    now = keys.clock.ms()
    try:
        record = await sign_in(token, settings, keys, now)
    except KeyProblem as exc:
        await audit.record(Actor("anonymous"), "console.signin_failed", "console",
                           {"address": addr, "key_prefix": _key_prefix(token),
                            "status": exc.status})
        what = ("Wrong token or key: unknown, revoked or expired" if exc.status == 401
                else f"This key cannot open the console: {exc.detail}")
        return _login_page(request, settings, status_code=exc.status, next_=to,
                           error=f"{what} — paste the admin token or an API key with the "
                                 "'viewer' or 'admin' scope.")
    await audit.record(Actor("console", record.who), "console.signin", "console",
                       {"role": record.role, "address": addr})
    return await start_session(request, settings, keys, record, now, to)


@post("/logout", include_in_schema=False, status_code=303)
async def logout(request: Req, viewer: Viewer, settings: NamedDependency[Settings],
                 keys: NamedDependency[ApiKeys], audit: NamedDependency[AuditLog]) -> Redirect:
    await audit.record(Actor("console", viewer.who), "console.signout", "console")
    return await end_session(request, settings, keys)


@get("/", include_in_schema=False)
async def home(viewer: Viewer) -> Redirect:
    """The console opens on the leads (the first item of the nav)."""
    return Redirect("/ui/leads", status_code=303)


handlers = [login_form, login, logout, home]
