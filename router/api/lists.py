"""The list APIs (issue 18): leads by filters, queues, reps, pools, accounts.

Reads need the admin token or an API key with the ``viewer`` (or ``admin``) scope; the
accounts import needs admin. Every list pages with ``limit`` (1..500, default 50) and
``cursor`` (the ``next_cursor`` of the page before; a forged or garbled one is a 400).
The logic is router/services/lists.py (``ListService``), which the console shares.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import FromPath, FromQuery, Parameter

from router.api.auth import admin_guard, admin_or_key, guarded_actor
from router.api.errors import problem
from router.api.openapi import problems
from router.services.audit import AuditLog
from router.services.directory import UnknownRep
from router.services.keys import ApiKeys
from router.services.lists import DEFAULT_LIMIT, MAX_LIMIT, ListService
from router.services.lists_model import (
    AccountPage,
    BadCursor,
    BadFilter,
    ImportRejected,
    ImportResult,
    LeadFilter,
    LeadPage,
    ListsOff,
    PoolView,
    QueuePage,
    QueueSummary,
    RepSummary,
    UnsupportedImport,
)
from router.settings import Settings

__all__ = ["handlers"]

T = TypeVar("T")
_LIMIT_FIX = f"use a limit from 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})"
Limit = Annotated[int, Parameter(ge=1, le=MAX_LIMIT, description="items per page")]


@dataclass
class _ImportBody(Operation):
    """The import's body in the schema: CSV or JSON lines, as text."""

    def __post_init__(self) -> None:
        text = Schema(type=OpenAPIType.STRING)
        self.request_body = RequestBody(required=True, description=(
            "CSV with the header `domain,owner`, or JSON lines "
            '(`{"domain": "acme.com", "owner": "alice"}` a line)'), content={
                "text/csv": OpenAPIMediaType(schema=text),
                "application/x-ndjson": OpenAPIMediaType(schema=text)})


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise problem(400, "Invalid limit", f"limit={limit}: {_LIMIT_FIX}", kind="validation",
                      errors=[{"path": "limit", "message": "out of range"}])
    return limit


def _when(name: str, value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        raise problem(422, "Invalid filter", f"{name}={value.isoformat()}: give a time zone, "
                      "e.g. 2026-12-01T09:00:00Z", kind="validation",
                      errors=[{"path": name, "message": "time zone required"}])
    return value


def _bad_cursor(exc: BadCursor) -> Exception:
    return problem(400, "Invalid cursor", str(exc), kind="invalid-cursor",
                   errors=[{"path": "cursor", "message": "not a cursor of this list"}])


def _bad_filter(exc: BadFilter) -> Exception:
    return problem(422, "Unknown filter value",
                   f"{exc}: use one of those for {exc.field}", kind="validation",
                   errors=[{"path": exc.field, "message": "unknown value",
                            "allowed": list(exc.allowed)}])


async def _run(answer: Awaitable[T]) -> T:
    """The service's answer, its errors as problems: 400 cursor, 422 filter, 409 lists off."""
    try:
        return await answer
    except BadFilter as exc:
        raise _bad_filter(exc) from None
    except BadCursor as exc:
        raise _bad_cursor(exc) from None
    except ListsOff as exc:
        raise problem(409, "List indexes off", str(exc), kind="lists-off") from None


async def _viewer(request: Request[Any, Any, Any], settings: Settings, keys: ApiKeys) -> None:
    await admin_or_key(request, settings, keys, scope="viewer")


@get("/v1/leads", tags=["lists"], responses=problems(409, 422))
async def list_leads(request: Request[Any, Any, Any], lists: NamedDependency[ListService],
                     settings: NamedDependency[Settings], keys: NamedDependency[ApiKeys],
                     status: FromQuery[str | None] = None, queue: FromQuery[str | None] = None,
                     owner: FromQuery[str | None] = None, pool: FromQuery[str | None] = None,
                     territory: FromQuery[str | None] = None,
                     segment: FromQuery[str | None] = None, grade: FromQuery[str | None] = None,
                     sla_state: FromQuery[str | None] = None,
                     since: FromQuery[dt.datetime | None] = None,
                     until: FromQuery[dt.datetime | None] = None,
                     q: FromQuery[str | None] = None, limit: Limit = DEFAULT_LIMIT,
                     cursor: FromQuery[str | None] = None) -> LeadPage:
    """Leads newest first, by any of: status, queue, owner, pool, territory, segment, grade,
    sla_state (each an exact value), created ``since``/``until`` (ISO times with a zone),
    ``q`` (an exact email or external id). Unknown status/grade/sla_state values are a 422
    naming the allowed ones. With several filters a page walks at most 5000 index entries
    and may come back short with a ``next_cursor``: follow it."""
    await _viewer(request, settings, keys)
    where = LeadFilter(status=status, queue=queue, owner=owner, pool=pool,
                       territory=territory, segment=segment, grade=grade, sla_state=sla_state,
                       since=_when("since", since), until=_when("until", until), q=q)
    return await _run(lists.leads(where, limit=_limit(limit), cursor=cursor))


@get("/v1/queues", tags=["lists"], responses=problems(409))
async def list_queues(request: Request[Any, Any, Any], lists: NamedDependency[ListService],
                      settings: NamedDependency[Settings],
                      keys: NamedDependency[ApiKeys]) -> list[QueueSummary]:
    """Every queue (of the rules, or with leads in it): how many wait, the oldest and its
    age in seconds."""
    await _viewer(request, settings, keys)
    return await _run(lists.queues())


@get("/v1/queues/{queue:str}", tags=["lists"], responses=problems(409))
async def get_queue(request: Request[Any, Any, Any], queue: FromPath[str],
                    lists: NamedDependency[ListService], settings: NamedDependency[Settings],
                    keys: NamedDependency[ApiKeys], limit: Limit = DEFAULT_LIMIT,
                    cursor: FromQuery[str | None] = None) -> QueuePage:
    """What waits in ``queue``, oldest first, each with its age in the queue. A queue nobody
    waits in is an empty page."""
    await _viewer(request, settings, keys)
    return await _run(lists.queue(queue, limit=_limit(limit), cursor=cursor))


@get("/v1/reps", tags=["lists"])
async def list_reps(request: Request[Any, Any, Any], lists: NamedDependency[ListService],
                    settings: NamedDependency[Settings],
                    keys: NamedDependency[ApiKeys]) -> list[RepSummary]:
    """Every rep of the rules: live status, why it takes no lead now, open leads, today's
    count against its cap, the start of its next working hours and its pools."""
    await _viewer(request, settings, keys)
    return await lists.reps()


@get("/v1/reps/{rep_id:str}/leads", tags=["lists"], responses=problems(409))
async def list_rep_leads(request: Request[Any, Any, Any], rep_id: FromPath[str],
                         lists: NamedDependency[ListService],
                         settings: NamedDependency[Settings], keys: NamedDependency[ApiKeys],
                         limit: Limit = DEFAULT_LIMIT,
                         cursor: FromQuery[str | None] = None) -> LeadPage:
    """The leads the rep owns now, newest first."""
    await _viewer(request, settings, keys)
    try:
        return await _run(lists.rep_leads(rep_id, limit=_limit(limit), cursor=cursor))
    except UnknownRep as exc:
        raise problem(404, "Not found", f"{exc} — use one of those ids",
                      kind="rep-not-found") from None


@get("/v1/pools", tags=["lists"])
async def list_pools(request: Request[Any, Any, Any], lists: NamedDependency[ListService],
                     settings: NamedDependency[Settings],
                     keys: NamedDependency[ApiKeys]) -> list[PoolView]:
    """Every pool: members with eligibility now and why not, today's use against the caps,
    and today's distribution (leads per member on its local day)."""
    await _viewer(request, settings, keys)
    return await lists.pools()


@get("/v1/accounts", tags=["accounts"])
async def list_accounts(request: Request[Any, Any, Any], lists: NamedDependency[ListService],
                        settings: NamedDependency[Settings], keys: NamedDependency[ApiKeys],
                        owner: FromQuery[str | None] = None,
                        limit: Limit = DEFAULT_LIMIT,
                        cursor: FromQuery[str | None] = None) -> AccountPage:
    """Account owners in domain order; ``owner``: only that rep's accounts."""
    await _viewer(request, settings, keys)
    return await _run(lists.accounts(owner=owner, limit=_limit(limit), cursor=cursor))


# 100k rows of CSV are a few MB: more than the service's body limit for leads.
_IMPORT_MAX_BYTES = 64 * 1024 * 1024


@post("/v1/accounts:import", tags=["accounts"], guards=[admin_guard], status_code=200,
      responses=problems(400, 413, 415, 422), request_max_body_size=_IMPORT_MAX_BYTES,
      operation_class=_ImportBody)
async def import_accounts(request: Request[Any, Any, Any], lists: NamedDependency[ListService],
                          audit: NamedDependency[AuditLog]) -> ImportResult:
    """Set many account owners at once: ``text/csv`` (header ``domain,owner``) or JSON lines
    (``application/x-ndjson``: ``{"domain": "acme.com", "owner": "alice"}`` a line). All or
    nothing: any bad line (not a domain, unknown rep, a domain twice) is a 422 listing every
    bad line number with its fix, and nothing is written."""
    body = await request.body()
    try:
        rows = lists.parse_accounts(body, request.headers.get("content-type", ""))
    except ImportRejected as exc:
        raise problem(422, "Invalid accounts", f"{exc}: fix the lines listed in `errors` and "
                      "send the whole file again", kind="validation",
                      errors=[{"path": f"line {e.line}", "line": e.line, "message": e.message,
                               "fix": e.fix} for e in exc.errors]) from None
    except UnsupportedImport as exc:
        raise problem(415, "Unsupported import", str(exc), kind="unsupported-media-type") from None
    except ValueError as exc:
        raise problem(400, "Invalid import", str(exc), kind="validation") from None
    result = await lists.import_accounts(rows)
    await audit.record(guarded_actor(request), "account.import", "accounts",  # a summary
                       {"lines": result.lines, "imported": result.imported})
    return result


handlers = [list_leads, list_queues, get_queue, list_reps, list_rep_leads, list_pools,
            list_accounts, import_accounts]
