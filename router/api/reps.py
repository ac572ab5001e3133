"""Rep live state (available / away / out of office until) and pool statistics."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec
from litestar import Request, get, put
from litestar.params import FromPath

from router.api.auth import admin_guard
from router.api.errors import DECODE_ERRORS, problem, validation_problem
from router.api.openapi import json_body
from router.engine.availability import pool_plan
from router.state.models import PoolStats, RepState

__all__ = ["RepUpdate", "handlers"]


class RepUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A rep's availability. ``until`` ends an absence by itself (e.g. back Monday 09:00)."""

    status: Literal["available", "away", "out_of_office"]
    until: dt.datetime | None = None


def _rep(request: Request[Any, Any, Any], rep_id: str) -> None:
    if rep_id not in request.app.state.ctx.rules.current.reps:
        known = ", ".join(sorted(request.app.state.ctx.rules.current.reps)[:20])
        raise problem(404, "Not found", f"no rep {rep_id!r} in rules/reps.yaml (known: {known})",
                      kind="rep-not-found")


@get("/v1/reps/{rep_id:str}", tags=["reps"], guards=[admin_guard])
async def get_rep(request: Request[Any, Any, Any], rep_id: FromPath[str]) -> dict[str, Any]:
    """A rep's configuration (from the rules) and live availability (from Redis)."""
    _rep(request, rep_id)
    ctx = request.app.state.ctx
    spec = ctx.rules.current.reps[rep_id]
    state: RepState = await ctx.store.get_rep(rep_id)
    return {"id": rep_id, "name": spec.name, "timezone": spec.timezone, "weight": spec.weight,
            "daily_cap": spec.daily_cap, "live": state,
            "available_now": state.available_at(ctx.now())}


@put("/v1/reps/{rep_id:str}", tags=["reps"], guards=[admin_guard],
     operation_class=json_body(RepUpdate, "The rep's new availability."))
async def put_rep(request: Request[Any, Any, Any], rep_id: FromPath[str]) -> RepState:
    """Set a rep's availability: ``{"status": "out_of_office", "until": "2026-12-01T09:00Z"}``."""
    _rep(request, rep_id)
    try:
        update = msgspec.json.decode(await request.body(), type=RepUpdate)
    except msgspec.ValidationError as exc:
        raise validation_problem(exc, title="Invalid rep state") from None
    except DECODE_ERRORS as exc:
        raise problem(400, "Malformed JSON", f"the body is not valid JSON: {exc}") from None
    if update.until is not None and update.until.tzinfo is None:
        raise problem(422, "Invalid rep state", "$.until: give a time zone, e.g. "
                      "2026-12-01T09:00:00Z", kind="validation",
                      errors=[{"path": "$.until", "message": "time zone required"}])
    state: RepState = await request.app.state.ctx.store.put_rep(rep_id, update.status,
                                                                update.until)
    return state


@get("/v1/pools/{pool_id:str}", tags=["reps"])
async def get_pool(request: Request[Any, Any, Any], pool_id: FromPath[str]) -> PoolStats:
    """Members, who is eligible right now and why not, assignments today, caps used."""
    ctx = request.app.state.ctx
    ruleset = ctx.rules.current
    pool = ruleset.pools.get(pool_id)
    if pool is None:
        raise problem(404, "Not found", f"no pool {pool_id!r} (known: "
                      f"{', '.join(sorted(ruleset.pools))})", kind="pool-not-found")
    stats: PoolStats = await ctx.store.pool_stats(pool_plan(pool, ruleset.reps, ctx.now()),
                                                  now=ctx.now())
    return stats


handlers = [get_rep, put_rep, get_pool]
