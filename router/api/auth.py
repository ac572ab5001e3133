"""Bearer-token guard for admin endpoints (rules reload, reps, accounts)."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from router.api.errors import problem

__all__ = ["admin_guard"]


def admin_guard(connection: ASGIConnection[Any, Any, Any, Any],
                handler: BaseRouteHandler) -> None:
    token: str | None = connection.app.state.ctx.settings.admin_token
    if not token:
        raise problem(403, "Admin API disabled",
                      "admin endpoints are off because no admin token is configured — set "
                      "LEADROUTER_ADMIN_TOKEN and send it as 'Authorization: Bearer <token>'",
                      kind="admin-disabled")
    header = connection.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             token.encode()):
        raise problem(401, "Unauthorized",
                      "send the admin token as 'Authorization: Bearer <token>'",
                      headers={"WWW-Authenticate": 'Bearer realm="leadrouter-admin"'})
