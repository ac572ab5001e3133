"""``/ui/audit``: the audit log as a filterable table (the ``GET /v1/admin/audit`` data: who
changed rules, reps, accounts, API keys, and who erased what — counts only).

Like the API, for admins only (the admin token or an ``admin`` key): a viewer gets the page
saying so, 403. Filters are a GET form; "Older" follows the page's cursor, so it works without
JavaScript."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from router.api.audit import page_of
from router.api.console._session import Req, Viewer, page
from router.services.audit import ACTIONS, AuditEntry, AuditLog

__all__ = ["handlers"]

_TEXT = Annotated[str | None, QueryParameter(max_length=200)]
_LIMIT = 50


def _detail(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    return str(value)


def _row(entry: AuditEntry) -> dict[str, Any]:
    at = dt.datetime.fromtimestamp(entry.at / 1000, dt.UTC)
    details = dict(entry.details)
    errors = details.pop("errors", None)
    return {"id": entry.id, "at": at.strftime("%Y-%m-%d %H:%M:%S"), "actor": entry.actor,
            "action": entry.action, "target": entry.target,
            "details": [(k, _detail(v)[:12] if k.endswith("version") and v else _detail(v))
                        for k, v in details.items()],
            "errors": errors if isinstance(errors, list) else []}


@get("/audit", include_in_schema=False)
async def audit_page(request: Req, viewer: Viewer, audit: NamedDependency[AuditLog],
                     since: Annotated[str | None, QueryParameter(max_length=64)] = None,
                     until: Annotated[str | None, QueryParameter(max_length=64)] = None,
                     actor: _TEXT = None, action: _TEXT = None, target: _TEXT = None,
                     cursor: Annotated[str | None, QueryParameter(max_length=500)] = None,
                     ) -> Template:
    filters = {"since": since or "", "until": until or "", "actor": actor or "",
               "action": action or "", "target": target or ""}
    context: dict[str, Any] = {"filters": filters, "actions": ACTIONS, "rows": [],
                               "older": "", "error": "", "first_page": not cursor}
    if not viewer.is_admin:
        context["error"] = (f"signed in as {viewer.label}, a viewer: the audit log needs the "
                            "admin token or an API key with the 'admin' scope — sign out and "
                            "sign in with one")
        return page(request, viewer, "console/audit.html", "audit", status_code=403,
                    **context)
    try:
        result = await page_of(audit, limit=_LIMIT, cursor=cursor, **filters)
    except ProblemDetailsException as exc:  # a bad filter or cursor: said on the page
        context["error"] = str(exc.detail)
        return page(request, viewer, "console/audit.html", "audit",
                    status_code=exc.status_code, **context)
    context["rows"] = [_row(e) for e in result.entries]
    if result.next_cursor:
        kept = {k: v for k, v in filters.items() if v}
        context["older"] = "/ui/audit?" + urlencode({**kept, "cursor": result.next_cursor})
    return page(request, viewer, "console/audit.html", "audit", **context)


handlers: list[ControllerRouterHandler] = [audit_page]
