"""RFC 9457 problem details for every error the API returns.

Client mistakes get a 4xx with the field path and how to fix it; a Redis outage gets 503 with
Retry-After; nothing a client sends can produce a 500 (an unexpected exception is still answered
as problem+json, logged with the request id, and counted).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import ProblemDetailsException

from router.state.errors import StateUnavailable

__all__ = ["exception_handlers", "problem", "validation_problem"]

log = logging.getLogger("leadrouter.api")

TYPE_BASE = "https://leadrouter.dev/problems/"
_PATH = re.compile(r" - at `(\$[^`]*)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `([^`]*)`")


def problem(status: int, title: str, detail: str, *, kind: str | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> ProblemDetailsException:
    return ProblemDetailsException(
        status_code=status, title=title, detail=detail, headers=headers,
        type_=TYPE_BASE + (kind or title.lower().replace(" ", "-")), extra=extra or None)


def validation_problem(exc: Exception, *, prefix: str = "$",
                       title: str = "Invalid lead") -> ProblemDetailsException:
    """422 naming the offending field (``$.employees``) and what to send instead."""
    text = str(exc)
    m = _PATH.search(text)
    path = prefix + m.group(1)[1:] if m else prefix
    message = _PATH.sub("", text)
    unknown = _UNKNOWN.match(message)
    if unknown:  # msgspec puts the unknown field in the message, not in the path
        path = f"{path}.{unknown.group(1)}"
    return problem(422, title, f"{path}: {message}", kind="validation",
                   errors=[{"path": path, "message": message}])


def _to_response(request: Request[Any, Any, Any], exc: ProblemDetailsException) -> Response[Any]:
    return exc.to_response(request)


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    titles = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
              405: "Method not allowed", 409: "Conflict", 413: "Request body too large",
              415: "Unsupported media type", 429: "Too many requests"}
    extra: dict[str, Any] = {}
    detail = exc.detail
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        status = 422 if status == 400 else status
        extra["errors"] = [{"path": f"$.{e.get('key', '')}", "message": e.get("message", "")}
                           for e in exc.extra if isinstance(e, dict)]
    if status == 413:
        detail = "the request body is larger than the service accepts — send fewer leads per " \
                 "batch or smaller fields"
    return problem(status, titles.get(status, "Error"), detail, headers=exc.headers,
                   **extra).to_response(request)


def _unavailable(request: Request[Any, Any, Any], exc: StateUnavailable) -> Response[Any]:
    retry = str(getattr(request.app.state, "retry_after", 2))
    return problem(503, "Service unavailable",
                   "the state store (Redis) is unreachable; nothing was written — retry later",
                   kind="state-unavailable", headers={"Retry-After": retry}).to_response(request)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error", extra={"path": request.url.path})
    return problem(500, "Internal error", "an unexpected error occurred; it has been logged",
                   kind="internal").to_response(request)


exception_handlers: dict[Any, Any] = {
    ProblemDetailsException: _to_response,
    HTTPException: _http,
    StateUnavailable: _unavailable,
    Exception: _unexpected,
}
