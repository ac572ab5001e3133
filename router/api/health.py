"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from router.services.health import Health

__all__ = ["livez", "readyz"]


@get("/livez", sync_to_thread=False, include_in_schema=True, tags=["health"])
def livez() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "ok"}


@get("/readyz", tags=["health"], responses={503: ResponseSpec(
    data_container=dict[str, Any], generate_examples=False,
    description="Not ready (Redis down or no ruleset): the same body, status unavailable")})
async def readyz(health: NamedDependency[Health]) -> Response[dict[str, Any]]:
    """Ready to take leads: Redis answers and a ruleset is loaded."""
    rules = health.rules
    checks = {"rules": rules.loaded, "redis": await health.store_ok()}
    ok = all(checks.values())
    body: dict[str, Any] = {"status": "ok" if ok else "unavailable", "checks": checks}
    if rules.loaded:
        body["rules_version"] = rules.current.version
    headers = {} if ok else {"Retry-After": str(health.settings.retry_after_seconds)}
    return Response(body, status_code=200 if ok else 503, headers=headers)
