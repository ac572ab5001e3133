"""Rules: the current version, reloads, and dry-run evaluation."""

from __future__ import annotations

import datetime
from typing import Any

import msgspec
from leadrouter_sdk import Lead, decode_lead
from litestar import Request, get, post
from litestar.di import NamedDependency

from router.api._body import decode_body, decode_json
from router.api.auth import admin_guard
from router.api.errors import problem
from router.engine.cases import CaseState
from router.plugins.host import PluginHost
from router.services.clock import Clock
from router.services.decide import dry_run
from router.services.rules import RulesManager
from router.services.rules_watch import RulesWatcher

__all__ = ["evaluate_lead", "get_rules", "reload_rules"]


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


@post("/v1/admin/rules/reload", guards=[admin_guard], tags=["rules", "admin"], status_code=200)
async def reload_rules(watcher: NamedDependency[RulesWatcher]) -> dict[str, Any]:
    """Reload the rules directory now: all or nothing, and only if its test cases pass."""
    result = watcher.rules.reload(reason="admin")
    if not result.ok:
        raise problem(422, "Rules rejected",
                      f"the new rules were not loaded ({len(result.errors)} problem(s)); "
                      f"version {result.version[:12]} keeps serving — fix the files and reload",
                      kind="rules-rejected", errors=result.errors, version=result.version)
    await watcher.announce()  # the other workers reload too
    return {"ok": True, "changed": result.changed, **_status(watcher.rules)}


class _DryRun(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    lead: msgspec.Raw
    state: CaseState = msgspec.field(default_factory=CaseState)
    now: datetime.datetime | None = None


@post("/v1/rules/evaluate", tags=["rules"], status_code=200)
async def evaluate_lead(request: Request[Any, Any, Any], rules: NamedDependency[RulesManager],
                        clock: NamedDependency[Clock],
                        plugins: NamedDependency[PluginHost]) -> dict[str, Any]:
    """Dry run: the lead through the current rules, nothing written, full explanation.

    The body is a lead, or ``{"lead": {...}, "state": {"account_owner": ..., "events":
    [{"event": ..., "days_ago": ...}]}, "now": "..."}`` to try engagement and ownership.
    """
    body = await request.body()
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
    # The same enrich → decide() path as real routing, so the dry run explains what the
    # service would decide (plugins included); only the Redis writes are skipped.
    plan = await dry_run(lead, state, when, ruleset, evaluator=rules.evaluator(ruleset),
                         plugins=plugins)
    return {"evaluation": plan.evaluation, "explanation": plan.explanation, "lead": plan.lead}
