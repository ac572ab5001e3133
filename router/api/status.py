"""``GET /metrics`` (Prometheus) and ``GET /v1/status`` (a summary for humans)."""

from __future__ import annotations

import os
import time
from typing import Any

from litestar import Response, get
from litestar.di import NamedDependency

from router import __version__
from router.observability import metrics
from router.services.health import Health

__all__ = ["handlers", "metrics_endpoint", "status", "summary"]


@get("/metrics", tags=["health"], include_in_schema=False, cache_control=None)
async def metrics_endpoint(health: NamedDependency[Health]) -> Response[bytes]:
    """Prometheus text exposition: every worker's metrics (multiprocess mode) plus values read
    at scrape time (rules version, SLA clocks and queue depths from Redis)."""
    await health.refresh_scrape()
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if days or hours:
        parts.append(f"{hours}h")
    parts += [f"{minutes}m", f"{secs}s"] if not days else [f"{minutes}m"]
    return " ".join(parts)


@get("/v1/status", tags=["health"])
async def status(health: NamedDependency[Health]) -> dict[str, Any]:
    """What is running, on which rules, against which Redis, since when, and how much it has
    routed — the summary an operator reads first."""
    return await summary(health)


async def summary(health: Health) -> dict[str, Any]:
    """``GET /v1/status``'s body (also the console's status page)."""
    await health.refresh_scrape()
    values = metrics.SCRAPE
    settings = health.settings
    rules = health.rules
    body: dict[str, Any] = {"service": "leadrouter", "version": __version__}
    uptime = time.time() - values.started
    body["uptime_seconds"] = round(uptime, 1)
    body["uptime"] = _duration(uptime)
    body["workers"] = settings.workers
    body["pid"] = os.getpid()
    if rules.loaded:
        rejected = rules.last_rejected
        body["rules"] = {
            "version": rules.current.version,
            "engine": rules.engine,
            "loaded_at": rules.loaded_at,
            "directory": str(rules.directory),
            "last_rejected": None if rejected is None else {
                "at": rejected.at, "reason": rejected.reason, "errors": rejected.errors,
                "attempted_version": rejected.attempted_version},
        }
    else:
        body["rules"] = None
    body["redis"] = {
        "reachable": bool(values.redis_up),
        "embedded": settings.embedded_redis,
        "key_prefix": settings.key_prefix,
    }
    body["leads"] = {
        "routed": int(metrics.sample_value("leadrouter_lead_outcomes_total",
                                           {"outcome": "created"})),
        "duplicates": int(metrics.sample_value("leadrouter_lead_outcomes_total",
                                               {"outcome": "duplicate"})),
        "counted_since": "the start of this instance (all its workers)",
    }
    if values.redis_up:
        body["backlog"] = {"sla_pending": values.sla_pending,
                           "sla_overdue": values.sla_overdue,
                           "queues": values.queues}
    return body


handlers = [metrics_endpoint, status]
