"""``POST /v1/rules/replay`` (admin): the stored leads through candidate rules, and the report
of what would have changed — the API twin of ``leadrouter rules replay`` (same options, same
JSON). Nothing is written to the service's state."""

from __future__ import annotations

import datetime
from typing import Any, Literal

import anyio.to_thread
import msgspec
from litestar import Request, Response, post
from litestar.di import NamedDependency

from router.api._body import decode_json
from router.api.auth import admin_guard
from router.api.errors import problem
from router.api.openapi import json_body
from router.engine.errors import RulesetError
from router.engine.ruleset import Ruleset
from router.plugins.host import PluginHost
from router.services.clock import Clock
from router.services.replay import ReplayService
from router.services.replay_options import (
    OptionError,
    load_rules,
    load_rules_texts,
    query_of,
    version_rules,
)
from router.services.replay_render import MEDIA_TYPES, render
from router.services.replay_report import Report, collect
from router.services.rules import RulesManager

__all__ = ["ReplayRequest", "replay_report", "replay_rules"]


class ReplayRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The candidate rules — ``files`` (``{"scoring.yaml": "...", ...}``, every rule file)
    or a ``directory`` on the server — and the same options as ``leadrouter rules replay``.
    ``rules_versions``: ``{VERSION: directory}`` to replay each lead against its own
    version's rules (leads of versions not given are skipped)."""

    files: dict[str, str] | None = None
    directory: str | None = None
    rules_versions: dict[str, str] = {}
    since: str | None = None
    until: str | None = None
    limit: int | None = None
    status: str | None = None
    pool: str | None = None
    territory: str | None = None
    format: Literal["json", "text", "markdown", "html"] = "json"


_TITLE = "Invalid replay request"


def _candidate(req: ReplayRequest, functions: Any) -> tuple[Ruleset, dict[str, Ruleset]]:
    if (req.files is None) == (req.directory is None):
        raise problem(422, _TITLE, "give the candidate rules as either `files` ({\"scoring."
                      "yaml\": \"...\", ...}) or `directory` (a path on the server), not "
                      "both or neither", kind="validation")
    try:
        candidate = load_rules_texts(req.files, functions) if req.files is not None \
            else load_rules(req.directory or "", functions)
        versions = version_rules({v: load_rules(d, functions)
                                  for v, d in req.rules_versions.items()})
    except RulesetError as exc:
        raise problem(422, "Rules rejected",
                      f"the candidate rules did not load ({len(exc.errors)} problem(s)); "
                      "nothing was replayed — fix the files (see errors) and send them again",
                      kind="rules-rejected", errors=[
                          {**msgspec.structs.asdict(e), "text": str(e)} for e in exc.errors],
                      text=exc.summary()) from None
    except OptionError as exc:
        raise problem(422, _TITLE, str(exc), kind="validation") from None
    return candidate, versions


@post("/v1/rules/replay", guards=[admin_guard], tags=["rules", "admin"], status_code=200,
      operation_class=json_body(ReplayRequest, "The candidate rules and the replay options."))
async def replay_rules(request: Request[Any, Any, Any], replay: NamedDependency[ReplayService],
                       rules: NamedDependency[RulesManager], clock: NamedDependency[Clock],
                       plugins: NamedDependency[PluginHost]) -> Response[bytes]:
    """Replay the stored leads of a window through candidate rules: what would have changed
    (status transitions, volume per pool/owner with fairness, rule hits and dead rules, score
    histogram, SLA load, samples of changed leads). ``format``: ``json`` (default; the shape
    is in docs/rules.md), ``text``, ``markdown`` or ``html`` (a self-contained page)."""
    req = decode_json(await request.body(), ReplayRequest, title=_TITLE)
    report = await replay_report(req, replay, rules, clock, plugins)
    return Response(render(report, req.format), media_type=MEDIA_TYPES[req.format])


async def replay_report(req: ReplayRequest, replay: ReplayService, rules: RulesManager,
                        clock: Clock, plugins: PluginHost) -> Report:
    """The replay ``req`` asks for (also the console's replay page); a 422 problem says what
    to fix in the request or the candidate rules."""
    # Parsing and compiling a rules directory takes a while: off the event loop, so live
    # routing on this worker goes on meanwhile.
    candidate, versions = await anyio.to_thread.run_sync(_candidate, req, plugins.functions())
    now = clock()
    try:
        query = query_of(now if now.tzinfo else now.replace(tzinfo=datetime.UTC),
                         since=req.since, until=req.until, limit=req.limit, status=req.status,
                         pool=req.pool, territory=req.territory)
    except OptionError as exc:
        raise problem(422, _TITLE, str(exc), kind="validation") from None
    rulesets: Any = {**versions, candidate.version: candidate} if versions else candidate
    await replay.prepare()  # older leads indexed, if the start-up backfill never finished
    return await collect(replay.run(rulesets, query), candidate=candidate,
                         base=rules.current, query=query)
