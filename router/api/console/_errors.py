"""Errors under ``/ui`` as HTML for people, problem+json for programs.

A refusal (403: the role or the CSRF token), a bad request (4xx) or a Redis outage (503, with
``Retry-After`` and the API's wording) is rendered with ``console/error.html`` when the client
is a browser — an htmx request (``HX-Request``) or one that accepts ``text/html`` — and stays
the API's problem+json otherwise (curl, scripts, tests reading ``type``).

htmx 2 does not swap 4xx/5xx answers by default; the layout's ``htmx-config`` meta swaps them,
and for an htmx request the answer is retargeted (``HX-Retarget``/``HX-Reselect``/
``HX-Reswap``) into the page's alert slot (``#console-alert``), above the form that was sent:
the message shows in place and the form stays.
"""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Response
from litestar.exceptions import HTTPException
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.response import Template

from router.api.console._session import Req
from router.api.errors import exception_handlers as api_handlers
from router.api.errors import unavailable
from router.state.errors import StateUnavailable

__all__ = ["ALERT_ID", "exception_handlers", "wants_html"]

ALERT_ID = "console-alert"
_TITLES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
           409: "Conflict", 413: "Request body too large", 415: "Unsupported media type",
           422: "Invalid input", 429: "Too many requests"}


def wants_html(request: Req) -> bool:
    """A browser: an htmx request, or one whose Accept names text/html."""
    return bool(request.headers.get("hx-request")) or \
        "text/html" in request.headers.get("accept", "")


def _html(request: Req, status: int, title: str, detail: str,
          headers: dict[str, str] | None) -> Template:
    extra = dict(headers or {})
    if request.headers.get("hx-request"):
        extra |= {"HX-Retarget": f"#{ALERT_ID}", "HX-Reselect": f"#{ALERT_ID}",
                  "HX-Reswap": "outerHTML"}
    return Template(template_name="console/error.html", status_code=status,
                    media_type=MediaType.HTML, headers=extra,
                    context={"user": None, "csrf_token": "", "csrf_field": "", "nav": "",
                             "request_path": request.url.path, "status": status,
                             "title": title, "detail": detail})


def _problem(request: Req, exc: ProblemDetailsException) -> Response[Any]:
    if not wants_html(request):
        return exc.to_response(request)
    return _html(request, exc.status_code, exc.title or _TITLES.get(exc.status_code, "Error"),
                 exc.detail or "", exc.headers)


def _http(request: Req, exc: HTTPException) -> Response[Any]:
    if not wants_html(request):
        response: Response[Any] = api_handlers[HTTPException](request, exc)
        return response
    return _html(request, exc.status_code, _TITLES.get(exc.status_code, "Error"),
                 str(exc.detail), exc.headers)


def _unavailable(request: Req, exc: StateUnavailable) -> Response[Any]:
    return _problem(request, unavailable(request, exc))


def exception_handlers() -> dict[type[Exception] | int, Any]:
    return {ProblemDetailsException: _problem, HTTPException: _http,
            StateUnavailable: _unavailable}
