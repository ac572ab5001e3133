"""``/ui/status``: the ``/v1/status`` summary, Redis, workers, plugins and their breakers."""

from __future__ import annotations

from litestar import get
from litestar.di import NamedDependency
from litestar.response import Template

from router.api.console._session import Req, Viewer, page
from router.api.status import summary
from router.plugins.host import PluginHost
from router.services.health import Health

__all__ = ["handlers"]


@get("/status", include_in_schema=False)
async def status_page(request: Req, viewer: Viewer, health: NamedDependency[Health],
                      plugins: NamedDependency[PluginHost]) -> Template:
    body = await summary(health)
    return page(request, viewer, "console/status.html", "status", status=body,
                plugins=plugins.plugins(), settings=health.settings, sinks=plugins.sinks)


handlers = [status_page]
