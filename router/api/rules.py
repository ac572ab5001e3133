"""Rules: the current version, reloads, and dry-run evaluation."""

from __future__ import annotations

import datetime
from typing import Any

import msgspec
from leadrouter_sdk import Lead, decode_lead
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery

from router.api._body import decode_body, decode_json
from router.api.auth import admin_guard, guarded_actor
from router.api.errors import problem
from router.api.openapi import DryRunRequest, json_body, problems
from router.engine.cases import CaseState
from router.plugins.host import PluginHost
from router.services.change_gate import ChangeLimit, parse_max_change
from router.services.clock import Clock
from router.services.decide import dry_run
from router.services.rules import RulesManager
from router.services.rules_watch import RulesWatcher

__all__ = ["evaluate", "evaluate_lead", "get_rules", "reload_rules"]


def _status(rules: RulesManager) -> dict[str, Any]:
    rs = rules.current
    return {
        "version": rs.version,
        "engine": rules.engine,
        "loaded_at": rules.loaded_at,
        "directory": str(rules.directory),
        "files": list(rs.files),
        "counts": {"rules": len(rs.rules), "pools": len(rs.pools), "reps": len(rs.reps),
                   "sla_policies": len(rs.sla_policies)},
        "last_reload": rules.last_result,
        "last_rejected": rules.last_rejected,
    }


@get("/v1/rules", tags=["rules"])
async def get_rules(rules: NamedDependency[RulesManager]) -> dict[str, Any]:
    """The ruleset this worker serves, when it was loaded, and the last rejected reload."""
    return _status(rules)


@post("/v1/admin/rules/reload", guards=[admin_guard], tags=["rules", "admin"], status_code=200,
      responses=problems(422))
async def reload_rules(request: Request[Any, Any, Any], watcher: NamedDependency[RulesWatcher],
                       max_change: FromQuery[str | None] = None) -> dict[str, Any]:
    """Reload the rules directory now: all or nothing, and only if its test cases pass.
    ``max_change`` (e.g. ``status:5%``; default LEADROUTER_RELOAD_MAX_CHANGE): refuse a change
    that moves more than that share of the last 7 days' leads."""
    result, gate = await watcher.reload("admin", _limits(max_change), by=guarded_actor(request))
    if gate is not None and not gate.ok:
        raise problem(422, "Rules change refused", result.errors[0], kind="change-refused",
                      version=result.version, attempted_version=result.attempted_version,
                      refusals=[msgspec.structs.asdict(r) for r in gate.refusals])
    if not result.ok:
        raise problem(422, "Rules rejected",
                      f"the new rules were not loaded ({len(result.errors)} problem(s)); "
                      f"version {result.version[:12]} keeps serving — fix the files and reload",
                      kind="rules-rejected", errors=result.errors, version=result.version)
    await watcher.announce()  # the other workers reload too
    return {"ok": True, "changed": result.changed, **_status(watcher.rules)}


def _limits(text: str | None) -> list[ChangeLimit] | None:
    """The reload's limits: None (the service's default) when not given."""
    if not text:
        return None
    try:
        return parse_max_change(text)
    except ValueError as exc:
        raise problem(422, "Invalid max_change", str(exc), kind="validation") from None


_EARLIEST = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_LATEST = datetime.datetime(9999, 1, 1, tzinfo=datetime.UTC)


class _DryRun(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    lead: msgspec.Raw
    state: CaseState = msgspec.field(default_factory=CaseState)
    now: datetime.datetime | None = None


@post("/v1/rules/evaluate", tags=["rules"], status_code=200,
      operation_class=json_body((Lead, DryRunRequest), "A lead, or {\"lead\", \"state\", "
                                "\"now\"} to try engagement and ownership.", name="Evaluate"))
async def evaluate_lead(request: Request[Any, Any, Any], rules: NamedDependency[RulesManager],
                        clock: NamedDependency[Clock],
                        plugins: NamedDependency[PluginHost]) -> dict[str, Any]:
    """Dry run: the lead through the current rules, nothing written, full explanation.

    The body is a lead, or ``{"lead": {...}, "state": {"account_owner": ..., "events":
    [{"event": ..., "days_ago": ...}]}, "now": "..."}`` to try engagement and ownership.
    """
    return await evaluate(await request.body(), rules, clock, plugins)


async def evaluate(body: bytes, rules: RulesManager, clock: Clock,
                   plugins: PluginHost) -> dict[str, Any]:
    """``POST /v1/rules/evaluate``'s answer for ``body`` (also the console's playground);
    a problem (400/422) says what to fix."""
    wrapped = decode_body(body, msgspec.json.decode) if body.lstrip().startswith(b"{") \
        else None
    state, now, prefix = CaseState(), None, "$"
    if isinstance(wrapped, dict) and isinstance(wrapped.get("lead"), dict):
        run = decode_json(body, _DryRun)
        body, state, now, prefix = bytes(run.lead), run.state, run.now, "$.lead"
    lead = decode_body(body, decode_lead, prefix=prefix, tp=Lead)
    ruleset = rules.current
    when = now or clock()
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    if not _EARLIEST <= when <= _LATEST:  # the events' clock (ms since 1970) must hold it
        raise problem(422, "Invalid lead", f"$.now: {when.isoformat()} is out of range — "
                      "give a time from 1970-01-01 to 9999-01-01, e.g. 2026-03-02T09:00:00Z",
                      kind="validation", errors=[{"path": "$.now", "message": "out of range"}])
    # The same enrich → decide() path as real routing, so the dry run explains what the
    # service would decide (plugins included); only the Redis writes are skipped.
    plan = await dry_run(lead, state, when, ruleset, evaluator=rules.evaluator(ruleset),
                         plugins=plugins)
    return {"evaluation": plan.evaluation, "explanation": plan.explanation, "lead": plan.lead}
