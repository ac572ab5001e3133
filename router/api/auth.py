"""Who may call what, one rule everywhere: the admin token, API keys, and the checks the
handlers share.

* :func:`authorize` — the admin token, or an API key with a scope: who is acting. No
  credentials, a wrong token or an unknown key is 401; a valid key without the scope is 403;
* :func:`admin_guard` — a litestar guard: the admin token or an ``admin`` key (rules reload,
  reps, accounts); off (403) while no admin token is configured;
* :func:`admin_or_key` — :func:`authorize` in a handler (key management, privacy, engagement);
* :func:`require_key` — with ``LEADROUTER_REQUIRE_API_KEY=true``, a key with a scope
  (``POST /v1/leads``: ``intake`` for the source ``api``; ``POST /v1/events``: ``events``);
* :func:`acting_for` — the owner actions: the rep's own ``owner`` key, or the admin token (or
  an ``admin`` key) acting for any rep; open only while no token and no key is configured;
* :func:`admin_actor` / :func:`guarded_actor` — who is acting, as the typed
  :class:`~router.state.audit.Actor` the audit log records (built here, from the verified
  credential only).

Keys are checked by :class:`router.services.keys.ApiKeys`; this module turns its answers into
401/403 problems.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.plugins.problem_details import ProblemDetailsException

from router.api.errors import problem
from router.services.audit import Actor
from router.services.keys import ApiKeys, KeyProblem, KeyRecord, token_from_headers
from router.settings import Settings

__all__ = ["acting_for", "admin_actor", "admin_guard", "admin_or_key", "authorize",
           "guarded_actor", "key_problem", "require_intake_key", "require_key"]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="leadrouter"'}
_ACTOR = "leadrouter.actor"  # where admin_guard leaves who passed it, for the handler
ADMIN_TOKEN = Actor("admin-token")


def _is_admin(header: str, token: str | None) -> bool:
    scheme, _, given = header.partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), (token or "").encode())


def key_problem(exc: KeyProblem, *, headers: dict[str, str] | None = None
                ) -> ProblemDetailsException:
    """The ``api-key`` problem for a refused key: 401 (missing, unknown, revoked) or 403 (no
    such scope or source); ``exc.detail`` says how to fix it. A 401 carries the
    ``WWW-Authenticate`` challenge."""
    if exc.status == 401:
        headers = {**_CHALLENGE, **(headers or {})}
    return problem(exc.status, "Unauthorized" if exc.status == 401 else "Forbidden", exc.detail,
                   kind="api-key", headers=headers)


def _settings_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Settings:
    # A guard is given no dependencies: the settings are on the app (router/app).
    settings = connection.app.state.settings
    if not isinstance(settings, Settings):
        raise TypeError("app.state.settings is not set — build the app with create_app")
    return settings


def _keys_of(connection: ASGIConnection[Any, Any, Any, Any]) -> ApiKeys:
    # Likewise the API keys, from the app's service holder (a 503 before the store is there);
    # checked, so the guard never works on an untyped lookup.
    keys = connection.app.state.services.keys
    if not isinstance(keys, ApiKeys):
        raise TypeError("app.state.services is not set — build the app with create_app")
    return keys


async def authorize(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings,
                    keys: ApiKeys, scope: str, *, source: str = "*",
                    admin_token: bool = True) -> str:
    """The admin token (when ``admin_token``), or an API key with ``scope`` for ``source``
    (``*``: any source): who is acting (``admin-token`` or the key's id).

    The same answer on every endpoint: 401 without credentials, with a wrong token or an
    unknown, revoked or expired key; 403 for a valid key without the scope (or source)."""
    record = await _credential(connection, settings, keys, scope, source=source,
                               admin_token=admin_token)
    return "admin-token" if record is None else record.id


async def _credential(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings,
                      keys: ApiKeys, scope: str, *, source: str = "*",
                      admin_token: bool = True) -> KeyRecord | None:
    """:func:`authorize`, answering the key's record (None: the admin token)."""
    header = connection.headers.get("authorization", "")
    if admin_token and _is_admin(header, settings.admin_token):
        return None
    api_key = token_from_headers(connection.headers)
    if api_key is None:
        what = "the admin token or " if admin_token and settings.admin_token else ""
        raise problem(401, "Unauthorized", f"send {what}an API key with the {scope!r} scope "
                      "as 'Authorization: Bearer ...' (keys also as 'X-API-Key: lrk_...')",
                      headers=_CHALLENGE)
    try:
        return await keys.check(api_key, source=source, scope=scope, any_source=source == "*")
    except KeyProblem as exc:
        raise key_problem(exc) from None


async def admin_guard(connection: ASGIConnection[Any, Any, Any, Any],
                      handler: BaseRouteHandler) -> None:
    settings = _settings_of(connection)
    if not settings.admin_token:
        raise problem(403, "Admin API disabled",
                      "admin endpoints are off because no admin token is configured — set "
                      "LEADROUTER_ADMIN_TOKEN and send it as 'Authorization: Bearer <token>'",
                      kind="admin-disabled")
    if _is_admin(connection.headers.get("authorization", ""), settings.admin_token):
        connection.state[_ACTOR] = ADMIN_TOKEN
        return  # the common case needs no key lookup (nor the store)
    record = await _credential(connection, settings, _keys_of(connection), "admin")
    connection.state[_ACTOR] = ADMIN_TOKEN if record is None else Actor("key", record.id)


def guarded_actor(connection: ASGIConnection[Any, Any, Any, Any]) -> Actor:
    """Who passed :func:`admin_guard` on this request (the admin token or an admin key)."""
    actor = connection.state.get(_ACTOR)
    if not isinstance(actor, Actor):
        raise RuntimeError("guarded_actor() in a handler without admin_guard")
    return actor


async def admin_actor(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings,
                      keys: ApiKeys, scope: str = "admin") -> Actor:
    """:func:`admin_or_key`, answering the typed actor (``admin-token`` or ``key:<id>``)."""
    record = await _credential(connection, settings, keys, scope)
    return ADMIN_TOKEN if record is None else Actor("key", record.id)


async def admin_or_key(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings,
                       keys: ApiKeys, scope: str = "admin") -> str:
    """The admin token, or an API key with ``scope`` (any source): who is acting."""
    return await authorize(connection, settings, keys, scope)


async def require_key(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings,
                      keys: ApiKeys, scope: str, *, source: str = "*") -> None:
    """With ``LEADROUTER_REQUIRE_API_KEY=true``, the admin token or a key with ``scope`` for
    ``source`` is required; off by default."""
    if settings.require_api_key:
        await authorize(connection, settings, keys, scope, source=source)


async def require_intake_key(connection: ASGIConnection[Any, Any, Any, Any],
                             settings: Settings, keys: ApiKeys) -> None:
    """With ``LEADROUTER_REQUIRE_API_KEY=true``, an ``intake`` key for the source ``api`` (or
    ``*``) is required; off by default."""
    if settings.require_api_key:
        await authorize(connection, settings, keys, "intake", source="api", admin_token=False)


async def acting_for(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings,
                     keys: ApiKeys, rep: str) -> str:
    """Who may act as ``rep`` in an owner action: the rep's own key (scope ``owner``, bound to
    ``rep``), or the admin token or an ``admin`` key acting for any rep. Answers the credential
    (``admin-token`` or the key's id), recorded in the lead's history; ``""`` while neither an
    admin token nor any key is configured (then the actions are open, as on a trial install)."""
    if not settings.admin_token and not await keys.configured():
        return ""
    record = await _credential(connection, settings, keys, "owner")
    if record is None:
        return "admin-token"
    if "admin" not in record.scopes and record.rep != rep:
        raise problem(403, "Forbidden", f"this key acts for rep {record.rep!r} only, not "
                      f"{rep!r} — use {rep!r}'s own key, or the admin token to act for any rep",
                      kind="api-key")
    return record.id
