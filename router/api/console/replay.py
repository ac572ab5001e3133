"""``/ui/rules/replay`` (admins): stored leads through candidate rules from a directory on
the server, the replay report (router/services/replay_render.py) shown in the console.

The replay runs in the request, as ``POST /v1/rules/replay`` does: it reads the arrival index
page by page and yields to the event loop between pages, so live routing on the same worker
goes on meanwhile. The form's default ``limit`` keeps a click from replaying a year."""

from __future__ import annotations

from typing import Any

from litestar import get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from router.api.console._session import Admin, Req, page
from router.api.replay import ReplayRequest, replay_report
from router.plugins.host import PluginHost
from router.services.clock import Clock
from router.services.replay import ReplayService
from router.services.replay_render import render
from router.services.rules import RulesManager

__all__ = ["handlers"]

DEFAULT_LIMIT = 5000
_FIELDS = ("directory", "since", "until", "limit", "status", "pool", "territory")


def _form(request: Req, admin: Admin, values: dict[str, str], **context: Any) -> Template:
    return page(request, admin, "console/replay.html", "rules", values=values, **context)


@get("/rules/replay", include_in_schema=False)
async def replay_form(request: Req, admin: Admin,
                      rules: NamedDependency[RulesManager]) -> Template:
    return _form(request, admin, {"directory": str(rules.directory), "since": "7d",
                                  "limit": str(DEFAULT_LIMIT)})


def _request(values: dict[str, str]) -> ReplayRequest:
    limit = values.get("limit", "")
    if limit and not limit.isdigit():
        raise ValueError(f"limit: {limit!r} is not a number — give how many leads at most, "
                         f"e.g. {DEFAULT_LIMIT}")
    return ReplayRequest(directory=values.get("directory") or None,
                         since=values.get("since") or None, until=values.get("until") or None,
                         limit=int(limit) if limit else None,
                         status=values.get("status") or None, pool=values.get("pool") or None,
                         territory=values.get("territory") or None, format="html")


def _values(form: FormMultiDict) -> dict[str, str]:
    out = {}
    for name in _FIELDS:
        value = form.get(name)
        out[name] = value.strip() if isinstance(value, str) else ""
    return out


@post("/rules/replay", include_in_schema=False, status_code=200)
async def replay_run(request: Req, admin: Admin, replay: NamedDependency[ReplayService],
                     rules: NamedDependency[RulesManager], clock: NamedDependency[Clock],
                     plugins: NamedDependency[PluginHost]) -> Template:
    values = _values(await request.form())
    if not values["directory"]:
        return _form(request, admin, values, error="give the candidate rules' directory on "
                     f"the server, e.g. {rules.directory}")
    try:
        report = await replay_report(_request(values), replay, rules, clock, plugins)
    except ValueError as exc:
        return _form(request, admin, values, error=str(exc))
    except ProblemDetailsException as exc:
        errors = (exc.extra or {}).get("errors", []) if isinstance(exc.extra, dict) else []
        lines = [e.get("text") or e.get("message", "") for e in errors if isinstance(e, dict)]
        return _form(request, admin, values, error=str(exc.detail), error_lines=lines)
    return _form(request, admin, values, report_html=render(report, "html").decode(),
                 replayed=report.replayed, changed=report.changed)


handlers: list[ControllerRouterHandler] = [replay_form, replay_run]
