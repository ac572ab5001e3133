"""``GET /v1/rules/shadow`` (admin): where the shadow rules (``LEADROUTER_SHADOW_RULES``) would
have sent the leads of the shadow period — the replay report of those leads against the
recorded shadow files (router/services/shadow.py), the API twin of ``leadrouter rules
shadow-report``."""

from __future__ import annotations

from typing import Literal

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromQuery

from router.api.auth import admin_guard
from router.api.errors import problem
from router.api.openapi import problems
from router.engine.errors import RulesetError
from router.plugins.host import PluginHost
from router.services.replay import ReplayService
from router.services.replay_render import MEDIA_TYPES, render
from router.services.rules import RulesManager
from router.services.shadow import NoShadow, ShadowService, shadow_report

__all__ = ["shadow_rules_report"]


@get("/v1/rules/shadow", guards=[admin_guard], tags=["rules", "admin"],
     responses=problems(404, 422))
async def shadow_rules_report(replay: NamedDependency[ReplayService],
                              rules: NamedDependency[RulesManager],
                              plugins: NamedDependency[PluginHost],
                              shadow: NamedDependency[ShadowService | None],
                              version: FromQuery[str | None] = None,
                              limit: FromQuery[int | None] = None,
                              status: FromQuery[str | None] = None,
                              pool: FromQuery[str | None] = None,
                              territory: FromQuery[str | None] = None,
                              format: FromQuery[Literal["json", "text", "markdown",
                                                        "html"]] = "json"
                              ) -> Response[bytes]:
    """The shadow period's leads replayed against the shadow rules: the same report as
    ``POST /v1/rules/replay`` (``version``: 7+ characters of an earlier shadow version;
    default the latest). The period runs from when the version was first loaded to the next
    shadow version, or to now while this worker still shadows it."""
    if limit is not None and limit < 1:
        raise problem(422, "Invalid shadow report request", f"limit: {limit} — give a "
                      "positive number of leads", kind="validation")
    active = shadow.current.version if shadow is not None and shadow.current else None
    try:
        report = await shadow_report(replay.store, replay, version=version, active=active,
                                     functions=plugins.functions(), base=rules.current,
                                     limit=limit, status=status, pool=pool,
                                     territory=territory)
    except NoShadow as exc:
        raise problem(404, "No shadow period", str(exc), kind="no-shadow") from None
    except RulesetError as exc:  # recorded files a newer/older build cannot load
        raise problem(422, "Shadow rules do not load", f"the recorded shadow rules do not "
                      f"load here: {exc.summary()} — run the report from a build that loads "
                      "them", kind="rules-rejected") from None
    return Response(render(report, format), media_type=MEDIA_TYPES[format])
