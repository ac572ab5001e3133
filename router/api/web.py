"""Server-rendered pages: the Jinja2 templates and the static assets they use.

One home for what every HTML page of the service shares — the console at ``/ui`` and the
signed action-link pages alike. Templates live in ``router/api/templates`` (``base.html`` is the
layout), assets in ``router/api/static`` and are served at ``/static``. Third-party scripts are
vendored there with their licences (``static/vendor``): the pages must work offline and behind
firewalls, so nothing is loaded from a CDN. Autoescaping is on for every template, so anything a
lead carries renders as text.
"""

from __future__ import annotations

from pathlib import Path

from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.datastructures import CacheControlHeader
from litestar.router import Router
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

__all__ = ["STATIC_PATH", "TEMPLATES", "static_files", "template_config"]

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATIC_PATH = "/static"


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja2 over router/api/templates, autoescaped (``.html`` and everything else)."""

    def setup(engine: JinjaTemplateEngine) -> None:
        engine.engine.autoescape = True  # also for templates not named *.html
        engine.engine.globals["static"] = STATIC_PATH

    return TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine,
                          engine_callback=setup)


def static_files() -> Router:
    """``/static/...``: the vendored scripts and the console's stylesheet (cached a day)."""
    return create_static_files_router(
        path=STATIC_PATH, directories=[STATIC], include_in_schema=False,
        cache_control=CacheControlHeader(max_age=86400, public=True))
