"""The RevOps console at ``/ui``: server-rendered pages over the same services as the API.

One :class:`litestar.Router` at ``/ui`` (none of it in the OpenAPI schema) with the console's
dependencies — ``viewer`` (anyone signed in) and ``admin`` (may change things), see
``_session.py`` — and its exception handlers (not signed in: to ``/ui/login``; console off: how
to turn it on). A page group is a module with a ``handlers`` list, added below; templates
extend ``console/_layout.html``, charts come from ``_charts.py`` (SVG, no JavaScript needed).
A page module imports what it shares by module path (``from router.api.console._charts import
bars``), never through this package (``from router.api.console import _charts``): this package
imports the pages, so that would be an import circle (tests/test_layout.py).
"""

from __future__ import annotations

from litestar import Router
from litestar.types import ControllerRouterHandler

from router.api.console import _errors, _session, access, leads, replay, reps, rules, sla, status
from router.api.console import audit as audit_page
from router.api.console import funnel as funnel_pages

__all__ = ["handlers"]

_PAGES: list[ControllerRouterHandler] = [
    *access.handlers, *status.handlers, *rules.handlers, *replay.handlers, *sla.handlers,
    *leads.handlers, *reps.handlers, *audit_page.handlers, *funnel_pages.handlers,
]

handlers: list[ControllerRouterHandler] = [
    Router(path="/ui", route_handlers=_PAGES, dependencies=_session.providers(),
           exception_handlers={**_errors.exception_handlers(),
                               **_session.exception_handlers()}, include_in_schema=False),
]
