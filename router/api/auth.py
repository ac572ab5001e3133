"""Who may call what: the admin token, API keys, and the checks the handlers share.

* :func:`admin_guard` — a litestar guard: the admin token (rules reload, reps, accounts);
* :func:`admin_or_key` — the admin token or an API key with a scope (key management, privacy);
* :func:`require_intake_key` — ``POST /v1/leads`` with ``LEADROUTER_REQUIRE_API_KEY=true``.

Keys are checked by :class:`router.services.keys.ApiKeys`; this module turns its answers into
401/403 problems.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.plugins.problem_details import ProblemDetailsException

from router.api.errors import problem
from router.services.keys import ApiKeys, KeyProblem, token_from_headers
from router.settings import Settings

__all__ = ["admin_guard", "admin_or_key", "key_problem", "require_intake_key"]


def _is_admin(header: str, token: str | None) -> bool:
    scheme, _, given = header.partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), (token or "").encode())


def key_problem(exc: KeyProblem, *, headers: dict[str, str] | None = None
                ) -> ProblemDetailsException:
    """The ``api-key`` problem for a refused key: 401 (missing, unknown, revoked) or 403 (no
    such scope or source); ``exc.detail`` says how to fix it."""
    return problem(exc.status, "Unauthorized" if exc.status == 401 else "Forbidden", exc.detail,
                   kind="api-key", headers=headers)


def admin_guard(connection: ASGIConnection[Any, Any, Any, Any],
                handler: BaseRouteHandler) -> None:
    # A guard is given no dependencies: the settings are on the app (router/app).
    settings = connection.app.state.settings
    if not isinstance(settings, Settings):
        raise TypeError("app.state.settings is not set — build the app with create_app")
    token = settings.admin_token
    if not token:
        raise problem(403, "Admin API disabled",
                      "admin endpoints are off because no admin token is configured — set "
                      "LEADROUTER_ADMIN_TOKEN and send it as 'Authorization: Bearer <token>'",
                      kind="admin-disabled")
    if not _is_admin(connection.headers.get("authorization", ""), token):
        raise problem(401, "Unauthorized",
                      "send the admin token as 'Authorization: Bearer <token>'",
                      headers={"WWW-Authenticate": 'Bearer realm="leadrouter-admin"'})


async def admin_or_key(request: Request[Any, Any, Any], settings: Settings, keys: ApiKeys,
                       scope: str = "admin") -> str:
    """The admin token, or an API key with ``scope`` (any source): who is acting."""
    if _is_admin(request.headers.get("authorization", ""), settings.admin_token):
        return "admin-token"
    api_key = token_from_headers(request.headers)
    if api_key is None:
        raise problem(401, "Unauthorized", "send the admin token or an API key with the "
                      f"{scope!r} scope as 'Authorization: Bearer ...'",
                      headers={"WWW-Authenticate": 'Bearer realm="leadrouter-admin"'})
    try:
        record = await keys.check(api_key, source="*", scope=scope, any_source=True)
    except KeyProblem as exc:
        raise key_problem(exc) from None
    return record.id


async def require_intake_key(request: Request[Any, Any, Any], settings: Settings,
                             keys: ApiKeys) -> None:
    """With ``LEADROUTER_REQUIRE_API_KEY=true``, an ``intake`` key for the source ``api`` (or
    ``*``) is required; off by default."""
    if not settings.require_api_key:
        return
    try:
        await keys.check(token_from_headers(request.headers), source="api", scope="intake")
    except KeyProblem as exc:
        raise key_problem(exc, headers={"WWW-Authenticate": 'Bearer realm="leadrouter"'}
                          ) from None
