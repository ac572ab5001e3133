"""RFC 9457 problem details for every error the API returns.

Client mistakes get a 4xx with the field path and how to fix it; a Redis outage gets 503 with
Retry-After; nothing a client sends can produce a 500 (an unexpected exception is still answered
as problem+json, logged with the request id, and counted).
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Mapping
from typing import Any

import msgspec
from leadrouter_sdk import Lead
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import ProblemDetailsException

from router.intake.form import WEB_TO_LEAD
from router.state.errors import ReplicasBehind, StateUnavailable

__all__ = ["exception_handlers", "problem", "unavailable", "validation_problem"]

log = logging.getLogger("leadrouter.api")

TYPE_BASE = "https://leadrouter.dev/problems/"
_PATH = re.compile(r" - at `(\$[^`]*)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `([^`]*)`")


def problem(status: int, title: str, detail: str, *, kind: str | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> ProblemDetailsException:
    return ProblemDetailsException(
        status_code=status, title=title, detail=detail, headers=headers,
        type_=TYPE_BASE + (kind or title.lower().replace(" ", "-")), extra=extra or None)


def validation_problem(exc: Exception, *, prefix: str = "$", title: str = "Invalid lead",
                       tp: Any = None) -> ProblemDetailsException:
    """422 naming the offending field (``$.employees``) and what to send instead. With ``tp``
    (the msgspec type that was decoded), an unknown field gets the name it probably meant."""
    text = str(exc)
    m = _PATH.search(text)
    path = prefix + m.group(1)[1:] if m else prefix
    message = _PATH.sub("", text)
    unknown = _UNKNOWN.match(message)
    if unknown:  # msgspec puts the unknown field in the message, not in the path
        path = f"{path}.{unknown.group(1)}"
        fields = _fields_at(tp, m.group(1) if m else "$") if tp is not None else None
        if fields:
            message = f"{message} — {_did_you_mean(unknown.group(1), fields)}"
    return problem(422, title, f"{path}: {message}", kind="validation",
                   errors=[{"path": path, "message": message}])


# Names other systems give lead fields (Salesforce Web-to-Lead, the form intake's own table):
# `website` is no typo of `domain`, so these come before the closest spelling.
_ALIASES: Mapping[str, str] = {k: v for k, v in WEB_TO_LEAD.items()
                               if k != v and v in Lead.__struct_encode_fields__}


def _did_you_mean(word: str, fields: tuple[str, ...]) -> str:
    """How to fix an unknown field name ``word`` of an object with ``fields``."""
    key = word.strip().lower().replace("-", "_").replace(" ", "_")
    close = [_ALIASES[key]] if _ALIASES.get(key) in fields else \
        difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
    free = "anything else goes under `attributes`" if "attributes" in fields else ""
    if close:
        return f"did you mean `{close[0]}`?" + (f" ({free})" if free else "")
    return f"the known fields are {', '.join(fields)}" + (f"; {free}" if free else "")


def _fields_at(tp: Any, path: str) -> tuple[str, ...] | None:
    """The JSON field names of the object at ``path`` (``$``, ``$.leads[0]``) inside ``tp``."""
    info: Any = msgspec.inspect.type_info(tp)
    for name, _ in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path[1:]):
        info = _unwrap(info)
        if isinstance(info, msgspec.inspect.StructType) and name:
            info = next((f.type for f in info.fields if f.encode_name == name), None)
        elif isinstance(info, msgspec.inspect.ListType) and not name:
            info = info.item_type
        elif isinstance(info, msgspec.inspect.DictType):
            info = info.value_type
        else:
            return None
    info = _unwrap(info)
    if isinstance(info, msgspec.inspect.StructType):
        return tuple(f.encode_name for f in info.fields)
    return None


def _unwrap(info: Any) -> Any:
    """Through ``Annotated`` metadata and ``X | None``."""
    while True:
        if isinstance(info, msgspec.inspect.Metadata):
            info = info.type
        elif isinstance(info, msgspec.inspect.UnionType):
            kinds = [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
            if len(kinds) != 1:
                return info
            info = kinds[0]
        else:
            return info


def _to_response(request: Request[Any, Any, Any], exc: ProblemDetailsException) -> Response[Any]:
    return exc.to_response(request)


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    titles = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
              405: "Method not allowed", 409: "Conflict", 413: "Request body too large",
              415: "Unsupported media type", 429: "Too many requests"}
    extra: dict[str, Any] = {}
    detail, kind = exc.detail, None
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        # a path, query or header parameter (bodies are decoded by _body.py): stays a 400
        errors = [{"path": f"$.{e.get('key', '')}", "message": e.get("message", "")}
                  for e in exc.extra if isinstance(e, dict)]
        extra["errors"], kind = errors, "invalid-parameter"
        if errors:
            detail = "; ".join(f"{e['path']}: {e['message']}" for e in errors) + \
                " — fix the parameter in the URL or headers"
    if status == 413:
        limit: int = request.app.state.settings.max_body_bytes
        kind, extra["limit_bytes"] = "body-too-large", limit
        detail = f"the request body is larger than the {limit:,} bytes this service accepts " \
                 "— split the batch into smaller ones (or send smaller fields), or raise " \
                 "the limit with LEADROUTER_MAX_BODY_BYTES"
    return problem(status, titles.get(status, "Error"), detail, kind=kind, headers=exc.headers,
                   **extra).to_response(request)


def unavailable(request: Request[Any, Any, Any], exc: StateUnavailable
                ) -> ProblemDetailsException:
    """The 503 (with Retry-After) of a Redis outage; the console renders the same as HTML."""
    retry = str(getattr(request.app.state, "retry_after", 2))
    detail = ("the lead is stored, but fewer Redis replicas than LEADROUTER_REDIS_WAIT_REPLICAS "
              "confirmed it in time — retry with the same Idempotency-Key (or external_id) to "
              "get it" if isinstance(exc, ReplicasBehind) else
              "the state store (Redis) is unreachable; nothing was written — retry later")
    return problem(503, "Service unavailable", detail,
                   kind="state-unavailable", headers={"Retry-After": retry})


def _unavailable(request: Request[Any, Any, Any], exc: StateUnavailable) -> Response[Any]:
    return unavailable(request, exc).to_response(request)


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
