"""``/ui/rules``: the live ruleset (version, files, load time, the last rejected reload with
its file:line errors) and the playground (a lead as JSON through the same dry run as
``POST /v1/rules/evaluate``: the full decision and explanation, nothing written)."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import msgspec
from litestar import get, post
from litestar.di import NamedDependency
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from router.api.console._session import Req, Viewer, page
from router.api.rules import evaluate
from router.plugins.host import PluginHost
from router.services.clock import Clock
from router.services.rules import ReloadResult, RulesManager

__all__ = ["handlers"]

EXAMPLE = {"email": "jane.doe@acme-corp.example", "first_name": "Jane", "last_name": "Doe",
           "company": "Acme Corp", "title": "VP Sales", "employees": 5000, "country": "US",
           "budget": 100000}
# "path/file.yaml:12:3: message" (the engine's errors) → file:line and the message
_LOCATED = re.compile(r"^(?P<where>[^\s:][^:]*:\d+(?::\d+)?): (?P<what>.*)$", re.DOTALL)
_BYTE = re.compile(r"\(byte (\d+)\)")
_HINTS = (("trailing comma", "remove the comma before the closing } or ]"),
          ("keys must be strings", 'put every name in double quotes: {"email": "..."}'),
          ("truncated", "the JSON ends too early — close every { and [ and every string"),
          ("invalid character", "JSON needs double quotes (not single ones) around names "
                                "and strings"),
          ("", "check the quotes, commas and braces there"))


def _errors(result: ReloadResult | None) -> list[dict[str, str]]:
    out = []
    for text in result.errors if result else []:
        m = _LOCATED.match(text)
        out.append({"where": m["where"], "what": m["what"]} if m else {"where": "",
                                                                       "what": text})
    return out


@get("/rules", include_in_schema=False)
async def rules_page(request: Req, viewer: Viewer,
                     rules: NamedDependency[RulesManager]) -> Template:
    rs = rules.current
    files = [os.path.relpath(f, rules.directory) if os.path.isabs(f) else str(f)
             for f in rs.files]
    return page(request, viewer, "console/rules.html", "rules", rules=rules, ruleset=rs,
                files=files,
                counts={"Rules": len(rs.rules), "Pools": len(rs.pools), "Reps": len(rs.reps),
                        "SLA policies": len(rs.sla_policies)},
                rejected=rules.last_rejected, rejected_errors=_errors(rules.last_rejected),
                last=rules.last_result)


def _playground(request: Req, viewer: Viewer, text: str, status_code: int = 200,
                **context: Any) -> Template:
    return page(request, viewer, "console/playground.html", "rules", status_code=status_code,
                lead_json=text, **context)


@get("/rules/playground", include_in_schema=False)
async def playground_form(request: Req, viewer: Viewer) -> Template:
    return _playground(request, viewer, json.dumps(EXAMPLE, indent=2))


def _where(text: str, detail: str) -> str:
    """``(byte N)`` in a JSON error as the line and column the textarea shows."""
    m = _BYTE.search(detail)
    if not m:
        return detail
    before = text.encode()[:int(m.group(1))].decode(errors="ignore")
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    return _BYTE.sub(f"(line {line}, column {column})", detail)


def _fix(exc: ProblemDetailsException, text: str) -> str:
    detail = str(exc.detail)
    if exc.status_code == 400:
        if not text.strip():
            return 'paste a lead as a JSON object, e.g. {"email": "jane@acme.example"}'
        hint = next(h for key, h in _HINTS if key in detail)
        return f"{_where(text, detail)} — {hint}"
    return f"{detail} — fix that field and run it again"


@post("/rules/playground", include_in_schema=False, status_code=200)
async def playground_run(request: Req, viewer: Viewer, rules: NamedDependency[RulesManager],
                         clock: NamedDependency[Clock],
                         plugins: NamedDependency[PluginHost]) -> Template:
    form = await request.form()
    raw = form.get("lead")
    text = raw if isinstance(raw, str) else ""
    try:
        result = await evaluate(text.encode(), rules, clock, plugins)
    except ProblemDetailsException as exc:
        # 200: htmx swaps only 2xx answers in, and the error is part of the page
        return _playground(request, viewer, text, error=_fix(exc, text))
    decision = msgspec.to_builtins(result)
    return _playground(request, viewer, text, decision=decision,
                       decision_json=json.dumps(decision, indent=2, ensure_ascii=False))


handlers: list[ControllerRouterHandler] = [rules_page, playground_form, playground_run]
