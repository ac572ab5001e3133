"""``GET /v1/admin/audit``: who changed what and when (router/services/audit.py).

The admin token or an API key with the ``admin`` scope; filters ``since``/``until`` (ISO 8601
or a duration before now, as the SLA report), ``actor`` (``admin-token``, ``key:<id>``,
``rules-watcher``, ``console:<id>``), ``action`` (one of :data:`ACTIONS`), ``target``
(``rules``, ``rep:<id>``, ``account:<domain>``, ``apikey:<id>``, ``erasure:<id>``); newest
first, ``limit`` per page, ``cursor`` from the previous page's ``next_cursor``.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from router.api.auth import admin_or_key
from router.api.errors import problem
from router.api.openapi import problems
from router.api.sla import _when
from router.services.audit import ACTIONS, AuditLog, AuditPage, BadCursor
from router.services.keys import ApiKeys
from router.settings import Settings

__all__ = ["handlers", "page_of"]

_TEXT = Annotated[str | None, QueryParameter(max_length=200)]


async def page_of(audit: AuditLog, *, since: str | None, until: str | None, actor: str | None,
                  action: str | None, target: str | None, limit: int,
                  cursor: str | None) -> AuditPage:
    """The filters as given in a query string, checked (422 / 400 problems), and their page:
    what the API and the console's Audit page both answer."""
    now = audit.clock()
    start, end = _when("since", since, now), _when("until", until, now)
    if start is not None and end is not None and start > end:
        raise problem(422, "Invalid time range", f"since ({start.isoformat()}) is after until "
                      f"({end.isoformat()}) — swap them", kind="validation")
    if action and action not in ACTIONS:
        raise problem(422, "Invalid filter", f"action={action!r} is not an audit action — use "
                      f"one of {', '.join(ACTIONS)}", kind="validation", allowed=list(ACTIONS),
                      errors=[{"path": "action", "message": "unknown action"}])
    try:
        return await audit.query(since=start, until=end, actor=actor or None,
                                 action=action or None, target=target or None, limit=limit,
                                 cursor=cursor or None)
    except BadCursor as exc:
        raise problem(400, "Invalid cursor", f"{exc} — drop `cursor` to start from the newest "
                      "entry, or pass the `next_cursor` of the previous page with the same "
                      "filters", kind="invalid-cursor") from None


@get("/v1/admin/audit", tags=["admin"], responses=problems(400, 422))
async def audit_log(request: Request[Any, Any, Any], settings: NamedDependency[Settings],
                    keys: NamedDependency[ApiKeys], audit: NamedDependency[AuditLog],
                    since: Annotated[str | None, QueryParameter(max_length=64)] = None,
                    until: Annotated[str | None, QueryParameter(max_length=64)] = None,
                    actor: _TEXT = None, action: _TEXT = None, target: _TEXT = None,
                    limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
                    cursor: Annotated[str | None, QueryParameter(
                        max_length=500, pattern=r"^[A-Za-z0-9_-]*$")] = None,
                    ) -> AuditPage:
    """The audit log, newest first: rules reloads (accepted or rejected, with version, changed
    files and the first errors), rep status, account owners, API keys (never the key),
    erasures (counts only), each with who did it (``admin-token``, ``key:<id>``,
    ``rules-watcher``, ``console:<id>``). Kept for LEADROUTER_AUDIT_RETENTION (400 days).

    Filters: ``since``/``until`` (ISO 8601, or a duration before now such as ``24h``),
    ``actor``, ``action`` (one of the audit actions; another is a 422 naming them),
    ``target`` (e.g. ``rep:ana``); ``limit`` per page; ``cursor``: the previous page's
    ``next_cursor`` (a cursor that was not handed out for these filters is a 400)."""
    await admin_or_key(request, settings, keys)
    return await page_of(audit, since=since, until=until, actor=actor, action=action,
                         target=target, limit=limit, cursor=cursor)


handlers = [audit_log]
