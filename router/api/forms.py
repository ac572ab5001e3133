"""HTML form posts: ``POST /v1/forms/{form_id}`` (and its CORS preflight).

A browser posts the form (url-encoded or multipart, Web-to-Lead field names); the lead is
routed and the browser is sent on with ``303 See Other`` to the form's thank-you page (or to an
allow-listed ``retURL``). Scripts that ask for JSON (``Accept: application/json``) get
``{"lead_id", "redirect"}`` instead — never the routing decision, which is internal.

Public by design, so defended by design: a rate limit per client address and form, an origin
allow-list (CORS and a check of ``Origin`` on every post), a honeypot field and a minimum fill
time that turn bots into ``bad_lead`` records in the ``spam`` queue instead of routed leads.
"""

from __future__ import annotations

import html
import urllib.parse
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request, Response, post, route
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.params import Parameter

from router.api.intake import intake_config, intake_problem, limits_of, route_lead
from router.api.openapi import problems
from router.intake.config import FormConfig, parse_rate
from router.intake.form import parse_form, read_form
from router.intake.mapping import IntakeError
from router.services.clock import Clock
from router.services.leads import LeadService
from router.services.ratelimit import RateLimits, client_address
from router.services.rules import RulesManager
from router.settings import Settings

__all__ = ["handlers"]

_FORM_ID = Annotated[str, Parameter(max_length=63)]


def _form(rules: RulesManager, form_id: str) -> FormConfig:
    form = intake_config(rules).forms.get(form_id)
    if form is None:
        raise IntakeError(404, "Unknown form", f"no form {form_id[:64]!r} in the intake "
                          "configuration (rules/intake.yaml `forms:`)", kind="unknown-form")
    return form


def _cors(form: FormConfig, request: Request[Any, Any, Any]) -> dict[str, str]:
    """CORS headers for an allowed origin; IntakeError(403) for an origin not on the list."""
    origin = request.headers.get("origin")
    if origin is None:
        return {}
    if not form.origins:
        return {"Vary": "Origin"}  # no list: posts are accepted, scripts cannot read answers
    if origin.lower() not in form.origins:
        raise IntakeError(403, "Origin not allowed", f"this form accepts posts from "
                          f"{', '.join(sorted(form.origins))} only (Origin: {origin[:100]!r})",
                          field="Origin", kind="origin-not-allowed", headers={"Vary": "Origin"})
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _with_query(url: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query += list(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


@route("/v1/forms/{form_id:str}", http_method=["OPTIONS"], tags=["forms"], status_code=204,
       include_in_schema=False)
async def form_preflight(request: Request[Any, Any, Any], form_id: _FORM_ID,
                         rules: NamedDependency[RulesManager]) -> Response[None]:
    """CORS preflight for scripts posting the form with fetch()."""
    try:
        form = _form(rules, form_id)
        headers = _cors(form, request)
    except IntakeError as exc:
        raise intake_problem(exc) from None
    if "Access-Control-Allow-Origin" in headers:
        headers.update({"Access-Control-Allow-Methods": "POST",
                        "Access-Control-Allow-Headers": "Content-Type, Accept",
                        "Access-Control-Max-Age": "600"})
    return Response(None, status_code=204, headers=headers)


@dataclass(frozen=True)
class _Intake:
    """What a form post uses besides the request."""

    rules: RulesManager
    settings: Settings
    clock: Clock
    rate_limits: RateLimits
    leads: LeadService


async def _post(request: Request[Any, Any, Any], form_id: str, intake: _Intake) -> Response[Any]:
    form = _form(intake.rules, form_id)
    cors = _cors(form, request)
    settings = intake.settings
    client = request.client.host if request.client else None
    addr = client_address(client, request.headers, settings.trusted_proxies)
    spec = form.rate_limit or parse_rate(settings.form_rate_limit)
    try:
        headers = {**cors, **await intake.rate_limits.enforce(f"form:{form.id}:ip:{addr}",
                                                              spec)}
    except IntakeError as exc:
        exc.headers.update(cors)
        raise
    limits = limits_of(settings)
    body = await request.body()
    key = request.headers.get("idempotency-key")
    key = key.strip()[:255] if key and key.strip() and key.isprintable() else None
    try:
        pairs = parse_form(body, request.headers.get("content-type", ""), limits)
        post = read_form(form, pairs, intake.clock(), limits)
        status, lead_id, _ = await route_lead(intake.leads, post.lead, body=body,
                                              source=form.source, key=key, spam=post.spam,
                                              retry_after=settings.retry_after_seconds)
    except IntakeError as exc:  # a 422 from reading or routing (no contact): the error page
        exc.headers.update(headers)
        if form.error_url and not _wants_json(request) and exc.status == 422:
            url = _with_query(form.error_url, error=exc.kind, field=exc.field or "")
            return _see_other(url, headers)
        raise
    if _wants_json(request):
        return Response({"lead_id": lead_id, "redirect": post.redirect,
                         "duplicate": status == 200}, status_code=201 if status == 201 else 200,
                        headers=headers)
    return _see_other(post.redirect, headers)


def _see_other(url: str, headers: dict[str, str]) -> Response[bytes]:
    """303 to ``url``, with a one-line page linking to it for a client that does not follow."""
    link = html.escape(url, quote=True)
    page = f'<!doctype html><title>See Other</title><a href="{link}">Continue</a>\n'
    return Response(page.encode(), status_code=303, media_type="text/html; charset=utf-8",
                    headers={**headers, "Location": url})


def _form_op() -> type[Operation]:
    fields = Schema(type="object", additional_properties=Schema(type="string"))  # type: ignore[arg-type]

    @dataclass
    class _Op(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                required=True, description="Web-to-Lead fields (first_name, last_name, email, "
                "company, title, phone, city, state, country, lead_source, description, "
                "retURL) and the form's mapped fields",
                content={"application/x-www-form-urlencoded": OpenAPIMediaType(schema=fields),
                         "multipart/form-data": OpenAPIMediaType(schema=fields)})

    return _Op


@post("/v1/forms/{form_id:str}", tags=["forms"], status_code=303, operation_class=_form_op(),
      responses=problems(409, 415))
async def post_form(request: Request[Any, Any, Any], form_id: _FORM_ID,
                    rules: NamedDependency[RulesManager], settings: NamedDependency[Settings],
                    clock: NamedDependency[Clock], rate_limits: NamedDependency[RateLimits],
                    leads: NamedDependency[LeadService]) -> Response[Any]:
    """An HTML form post: 303 to the thank-you page (or an allow-listed ``retURL``), or
    ``{"lead_id", "redirect"}`` with ``Accept: application/json``."""
    try:
        return await _post(request, form_id,
                           _Intake(rules, settings, clock, rate_limits, leads))
    except IntakeError as exc:
        raise intake_problem(exc) from None


handlers = [form_preflight, post_form]
