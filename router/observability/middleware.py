"""The ASGI wrapper every HTTP request passes through: request id, RED metrics, access log.

It wraps litestar's whole ASGI handler (outside routing and the exception handlers, like the
OpenTelemetry plugin does), so it sees every request — 404s and 405s included — with the final
status code, and the route *template* litestar matched (``/v1/leads/{lead_id:str}``), never the
raw path (unmatched paths are counted as ``route="unmatched"``).

Request ids: an incoming ``X-Request-ID`` (1-128 printable ASCII characters, no spaces) is
kept, otherwise one is generated; it is returned as ``X-Request-ID`` on every response and put
on every log line written while the request runs (:data:`router.observability.logs.REQUEST`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import Any

from router.observability import metrics
from router.observability.ids import random_hex
from router.observability.logs import REQUEST, RequestContext, access_line, redact

__all__ = ["ObservabilityMiddleware"]

access_log = logging.getLogger("leadrouter.access")

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_MAX_ID = 128
_perf = time.perf_counter


def _valid_request_id(raw: bytes) -> str | None:
    if not 0 < len(raw) <= _MAX_ID:
        return None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    # Printable, no whitespace, and nothing redaction would touch (an email or a phone number
    # is not an id): it goes into headers and log lines verbatim.
    if not text.isprintable() or " " in text or redact(text) != text:
        return None
    return text


class ObservabilityMiddleware:
    """Wraps an ASGI app (``app.asgi_handler``); ``enabled_log`` turns the access log off."""

    def __init__(self, app: Any, *, access: bool = True) -> None:
        self.app = app
        self.access = access
        # (method, route template, status) -> its counter and histogram children; bounded like
        # the labels themselves (methods, templates, status codes).
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = _perf()
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = _valid_request_id(value)
                break
        if request_id is None:
            request_id = random_hex()[:16]
        ctx = RequestContext(request_id)
        header = (b"x-request-id", request_id.encode())
        status = 500

        def send_with_id(message: Any) -> Awaitable[None]:
            # Not a coroutine: hands back send()'s own awaitable (one frame less per message).
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            return send(message)  # type: ignore[no-any-return]

        token = REQUEST.set(ctx)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = _perf() - start
            method = scope["method"]
            if method not in _METHODS:
                method = "OTHER"
            route = scope.get("path_template") or "unmatched"
            series = self._series.get((method, route, status))
            if series is None:
                series = self._series[(method, route, status)] = (
                    metrics.HTTP_REQUESTS.labels(method, route, str(status)),
                    metrics.HTTP_DURATION.labels(method, route))
            series[0].inc()
            series[1].observe(elapsed)
            if self.access and access_log.isEnabledFor(logging.INFO):
                extra: dict[str, Any] = {"request_id": ctx.request_id, "method": method,
                                         "route": route, "status": status,
                                         "duration_ms": round(elapsed * 1000, 3)}
                if ctx.lead_id is not None:
                    extra["lead_id"] = ctx.lead_id
                if ctx.rules_version is not None:
                    extra["rules_version"] = ctx.rules_version
                if ctx.fields:
                    extra.update(ctx.fields)
                access_line(extra)
            REQUEST.reset(token)
