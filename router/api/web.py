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

from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import OpenAPIRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.router import Router
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

__all__ = ["STATIC_PATH", "TEMPLATES", "openapi_renderers", "static_files", "template_config"]

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


def openapi_renderers() -> list[OpenAPIRenderPlugin]:
    """``/schema/swagger`` (also ``/schema``) and ``/schema/redoc`` from the vendored bundles
    (static/vendor/swagger-ui, static/vendor/redoc): no CDN, no Google fonts, no remote
    favicon, so both work offline."""
    vendor = f"{STATIC_PATH}/vendor"
    favicon = f"<link rel='icon' type='image/png' href='{vendor}/swagger-ui/favicon-32x32.png'>"
    return [
        SwaggerRenderPlugin(js_url=f"{vendor}/swagger-ui/swagger-ui-bundle.js",
                            css_url=f"{vendor}/swagger-ui/swagger-ui.css",
                            standalone_preset_js_url=(f"{vendor}/swagger-ui/"
                                                      "swagger-ui-standalone-preset.js"),
                            path=["/swagger", "/"], favicon=favicon),
        RedocRenderPlugin(js_url=f"{vendor}/redoc/redoc.standalone.js", google_fonts=False,
                          path="/redoc", favicon=favicon),
    ]
