"""Rules: the current version, reloads, and dry-run evaluation."""

from __future__ import annotations

import datetime
from typing import Any

import msgspec
from leadrouter_sdk import decode_lead
from litestar import Request, get, post

from router.api.auth import admin_guard
from router.api.errors import DECODE_ERRORS, problem, validation_problem
from router.engine.cases import CaseState, snapshot_for
from router.engine.evaluate import explain

__all__ = ["evaluate_lead", "get_rules", "reload_rules"]


def _status(ctx: Any) -> dict[str, Any]:
    rules = ctx.rules
    rs = rules.current
    return {
        "version": rs.version,
        "loaded_at": rules.loaded_at,
        "directory": str(rules.directory),
        "files": list(rs.files),
        "counts": {"rules": len(rs.rules), "pools": len(rs.pools), "reps": len(rs.reps),
                   "sla_policies": len(rs.sla_policies)},
        "last_reload": rules.last_result,
        "last_rejected": rules.last_rejected,
    }


@get("/v1/rules", tags=["rules"])
async def get_rules(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The ruleset this worker serves, when it was loaded, and the last rejected reload."""
    return _status(request.app.state.ctx)


@post("/v1/admin/rules/reload", guards=[admin_guard], tags=["rules", "admin"], status_code=200)
async def reload_rules(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Reload the rules directory now: all or nothing, and only if its test cases pass."""
    ctx = request.app.state.ctx
    result = ctx.rules.reload(reason="admin")
    if not result.ok:
        raise problem(422, "Rules rejected",
                      f"the new rules were not loaded ({len(result.errors)} problem(s)); "
                      f"version {result.version[:12]} keeps serving — fix the files and reload",
                      kind="rules-rejected", errors=result.errors, version=result.version)
    await ctx.announce_rules()
    return {"ok": True, "changed": result.changed, **_status(ctx)}


class _DryRun(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    lead: msgspec.Raw
    state: CaseState = msgspec.field(default_factory=CaseState)
    now: datetime.datetime | None = None


@post("/v1/rules/evaluate", tags=["rules"], status_code=200)
async def evaluate_lead(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Dry run: the lead through the current rules, nothing written, full explanation.

    The body is a lead, or ``{"lead": {...}, "state": {"account_owner": ..., "events":
    [{"event": ..., "days_ago": ...}]}, "now": "..."}`` to try engagement and ownership.
    """
    ctx = request.app.state.ctx
    body = await request.body()
    try:
        wrapped = msgspec.json.decode(body) if body.lstrip().startswith(b"{") else None
    except DECODE_ERRORS as exc:
        raise problem(400, "Malformed JSON", f"the body is not valid JSON: {exc}") from None
    state, now, prefix = CaseState(), None, "$"
    try:
        if isinstance(wrapped, dict) and isinstance(wrapped.get("lead"), dict):
            run = msgspec.json.decode(body, type=_DryRun)
            body, state, now, prefix = bytes(run.lead), run.state, run.now, "$.lead"
        lead = decode_lead(body)
    except msgspec.ValidationError as exc:
        raise validation_problem(exc, prefix=prefix) from None
    except DECODE_ERRORS as exc:
        raise problem(400, "Malformed JSON", f"the body is not valid JSON: {exc}") from None
    ruleset = ctx.rules.current
    when = now or ctx.now()
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    snapshot = snapshot_for(state, ruleset.windows, when)
    # The same enrich → score → engine → route path as real routing, so the dry run explains
    # what the service would decide (plugins included); only the Redis writes are skipped.
    plugins = ctx.leads.plugins if ctx.leads is not None else None
    notes: tuple[Any, ...] = ()
    evaluator = ctx.rules.evaluator(ruleset)
    if plugins is None:
        ev = evaluator(lead, snapshot, now=when)
    else:
        if plugins.has("enrich"):
            lead, enriched = await plugins.enrich(lead)
            notes = tuple(enriched)
        ev, notes = await plugins.evaluate(ruleset, lead, snapshot, now=when, notes=notes,
                                           evaluator=evaluator)
    return {"evaluation": ev, "explanation": (*notes, *explain(ruleset, ev)), "lead": lead}
