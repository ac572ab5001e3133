"""Rep live state (available / away / out of office until) and pool statistics."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec
from litestar import Request, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath

from router.api._body import decode_json
from router.api.auth import admin_guard, guarded_actor
from router.api.errors import problem
from router.api.openapi import json_body
from router.services.directory import (
    DirectoryService,
    PoolStats,
    RepState,
    RepView,
    UnknownPool,
    UnknownRep,
)

__all__ = ["RepUpdate", "handlers"]


class RepUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A rep's availability. ``until`` ends an absence by itself (e.g. back Monday 09:00)."""

    status: Literal["available", "away", "out_of_office"]
    until: dt.datetime | None = None


def _rep_not_found(exc: UnknownRep) -> Exception:
    return problem(404, "Not found", str(exc), kind="rep-not-found")


@get("/v1/reps/{rep_id:str}", tags=["reps"], guards=[admin_guard])
async def get_rep(rep_id: FromPath[str], directory: NamedDependency[DirectoryService]) -> RepView:
    """A rep's configuration (from the rules) and live availability (from Redis)."""
    try:
        return await directory.rep(rep_id)
    except UnknownRep as exc:
        raise _rep_not_found(exc) from None


@put("/v1/reps/{rep_id:str}", tags=["reps"], guards=[admin_guard],
     operation_class=json_body(RepUpdate, "The rep's new availability."))
async def put_rep(request: Request[Any, Any, Any], rep_id: FromPath[str],
                  directory: NamedDependency[DirectoryService]) -> RepState:
    """Set a rep's availability: ``{"status": "out_of_office", "until": "2026-12-01T09:00Z"}``."""
    try:
        directory.check_rep(rep_id)
    except UnknownRep as exc:
        raise _rep_not_found(exc) from None
    update = decode_json(await request.body(), RepUpdate, title="Invalid rep state")
    if update.until is not None and update.until.tzinfo is None:
        raise problem(422, "Invalid rep state", "$.until: give a time zone, e.g. "
                      "2026-12-01T09:00:00Z", kind="validation",
                      errors=[{"path": "$.until", "message": "time zone required"}])
    return await directory.set_rep(rep_id, update.status, update.until,
                                   by=guarded_actor(request))


@get("/v1/pools/{pool_id:str}", tags=["reps"])
async def get_pool(pool_id: FromPath[str],
                   directory: NamedDependency[DirectoryService]) -> PoolStats:
    """Members, who is eligible right now and why not, assignments today, caps used."""
    try:
        return await directory.pool(pool_id)
    except UnknownPool as exc:
        raise problem(404, "Not found", str(exc), kind="pool-not-found") from None


handlers = [get_rep, put_rep, get_pool]
