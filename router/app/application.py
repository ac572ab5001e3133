"""The litestar application: ``create_app(settings)``. Wiring only — no behaviour lives here.

Handlers get their services by litestar dependency injection, typed (router/app/services.py);
what needs Redis is built in the lifespan once the store is connected (:func:`build_services`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import gc
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsPlugin

from router import __version__
from router.api import ROUTE_HANDLERS
from router.api.errors import exception_handlers
from router.api.openapi import complete_allow, declare_problems
from router.api.web import openapi_renderers, static_files, template_config
from router.app.services import Connected, Services, resolve_dependencies_in_order
from router.engine.ruleset import Ruleset
from router.observability import metrics
from router.observability.instrument import InstrumentedStore
from router.observability.middleware import ObservabilityMiddleware
from router.plugins.delivery import run_sinks, with_owner_timezone
from router.plugins.host import PluginHost
from router.services.action_links import ActionLinks
from router.services.audit import AuditLog
from router.services.clock import Clock
from router.services.directory import DirectoryService
from router.services.engagement import EngagementService
from router.services.keys import ApiKeys
from router.services.leads import LeadService
from router.services.lists import ListService
from router.services.privacy import PrivacyService
from router.services.ratelimit import RateLimits, WebhookReplays
from router.services.replay import backfill_at_start
from router.services.retention import log_warnings
from router.services.rules import RulesManager
from router.services.sla import SlaService
from router.services.sla_warn import SlaWarner
from router.services.updates import update_lead
from router.settings import Settings
from router.state.engagement import EngagementLimits, EngagementStore
from router.state.errors import StateError
from router.state.store import Store
from router.state.wire import tls_options

__all__ = ["app_from_env", "build_services", "create_app"]

log = logging.getLogger("leadrouter")


def build_services(services: Services, store: Store) -> Connected:
    """Every service that speaks to the store, on ``store`` (called once it is connected)."""
    settings, rules, clock, plugins = (services.settings, services.rules, services.clock,
                                       services.plugins)
    limits = EngagementLimits.retained(settings.engagement_retention * 1000)
    engagement_state = EngagementStore(store, limits)
    engagement = EngagementService(state=engagement_state, rules=rules, clock=clock,
                                   plugins=plugins)
    leads = LeadService(store=store, rules=rules, settings=settings, clock=clock,
                        plugins=plugins, engagement=limits, rescore=engagement.after_commit,
                        update=functools.partial(update_lead, engagement))
    audit = AuditLog(store=store, clock=clock, retention_s=settings.audit_retention)
    directory = DirectoryService(store=store, rules=rules, clock=clock, record=audit.record)
    return Connected(
        store=store, leads=leads, engagement=engagement,
        sla=SlaService(store=store, rules=rules, settings=settings, clock=clock),
        privacy=PrivacyService(store=store, engagement=engagement_state, clock=clock,
                               record=audit.record),
        directory=directory,
        keys=ApiKeys.on(store, clock, audit.record), replays=WebhookReplays(store), audit=audit,
        links=ActionLinks(settings=settings, store=store, clock=clock),
        lists=ListService(store=store, rules=rules, clock=clock, directory=directory,
                          enabled=settings.list_indexes),
        # Valkey's clock for real time (one clock for all workers), the app's when injected
        rate_limits=RateLimits(store, clock=None if clock.real else clock))


async def _connect(settings: Settings) -> Store:
    # verify=False: start even while Redis is down (503 until it is back); scripts are loaded
    # now if possible, else on first use (EVALSHA falls back on NOSCRIPT).
    store = await InstrumentedStore.connect(
        settings.redis_url or "", prefix=settings.key_prefix, verify=False,
        tls=tls_options(settings),
        # a WAIT holds the connection up to its timeout: the call timeout must outlast it
        timeout=max(2.0, settings.redis_wait_timeout_ms / 1000 + 1.0),
        wait_replicas=settings.redis_wait_replicas,
        wait_timeout_ms=settings.redis_wait_timeout_ms,
        retention=datetime.timedelta(seconds=settings.decision_retention),
        inflight_ttl=datetime.timedelta(seconds=settings.inflight_timeout),
        idempotency_retention=datetime.timedelta(seconds=settings.idempotency_retention),
        sla_facts_maxlen=settings.sla_facts_maxlen, outbox_maxlen=settings.outbox_maxlen)
    with contextlib.suppress(StateError):
        await store.load_scripts()
    return store


def _settle_collector(threshold: int) -> None:
    # What start-up built (app, routes, rules, plugins) lives as long as the process: keep it
    # out of the collector's generations so full collections stay short under traffic.
    gc.collect()
    gc.freeze()
    # Python runs the young-generation collection every 700 net new container objects:
    # under load that is every 15-20 leads, and each run walks the objects of every request
    # in flight (0.5-2 ms at 64 in flight), with a full collection (~30 ms here) every
    # hundred runs. Rarer runs: +15% leads/s per worker (median of 12 A/B pairs, +1 to
    # +39%; loadtests/gc_ab.py), and no pauses of 0.5-45 ms under load.
    # For the rest of the process's life, as gc.freeze(): a worker runs one app.
    gc.set_threshold(threshold, *gc.get_threshold()[1:])


def _lifespan(services: Services, store: Store | None) -> Callable[[Litestar], Any]:
    settings, manager = services.settings, services.rules

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        connected = store or await _connect(settings)
        metrics.attach_store(connected)
        services.connect(build_services(services, connected))

        def retention_check(ruleset: Ruleset) -> None:  # at start and after every reload
            log_warnings(ruleset, retention=settings.engagement_retention,
                         decision_retention=settings.decision_retention)

        retention_check(manager.current)
        manager.listeners.append(retention_check)
        await services.watcher.attach(connected)
        tasks = [asyncio.create_task(services.watcher.run(), name="rules-watcher"),
                 asyncio.create_task(_flush_metrics(settings.metrics_flush_seconds),
                                     name="metrics-flush")]
        if services.shadow is not None:  # shadow mode (router/services/shadow.py)
            await services.shadow.attach(connected)
            tasks.append(asyncio.create_task(services.shadow.run(), name="shadow-rules"))
        if settings.sla_poll_seconds > 0:  # breach worker (router/services/sla.py)
            tasks.append(asyncio.create_task(services.sla.run(), name="sla-worker"))
        warner = SlaWarner(store=connected, rules=manager, settings=settings,
                           clock=services.clock)
        if warner.enabled:  # sla.warning events (router/services/sla_warn.py)
            tasks.append(asyncio.create_task(warner.run(), name="sla-warnings"))
        links = services.links
        if (note := links.startup_note()) is not None:
            log.info(note)
        # Older leads into the replay's arrival index: once per deployment, in the background.
        tasks.append(asyncio.create_task(backfill_at_start(connected), name="arrivals-backfill"))
        tasks.append(asyncio.create_task(services.lists.backfill_at_start(),
                                         name="accounts-backfill"))  # older accounts listed
        _settle_collector(settings.gc_threshold)
        try:
            async with run_sinks(connected, services.plugins, settings,  # outbox → on_event
                                 enrich=with_owner_timezone(  # the rep's zone, then links
                                     lambda: manager.current.reps,
                                     links.enrich if links.signer else None)):
                yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await services.plugins.shutdown()  # after the sinks stopped: plugins close up
            metrics.mark_process_dead()
            manager.listeners.remove(retention_check)
            if store is None:  # ours to close
                await connected.close()

    return lifespan


def create_app(settings: Settings, *, rules: RulesManager | None = None,
               store: Store | None = None,
               clock: Callable[[], datetime.datetime] | None = None,
               plugins: PluginHost | None = None) -> Litestar:
    """Build the service. ``store``/``rules``/``clock``/``plugins`` may be injected (tests);
    by default plugins are discovered from the settings (router/plugins/host.py)."""
    host = plugins if plugins is not None else PluginHost.from_settings(settings)
    manager = rules or RulesManager(settings.rules_dir,
                                    require_tests=settings.require_rules_tests,
                                    functions=host.functions(), engine=settings.engine)
    if not manager.loaded:
        manager.load_initial()  # invalid rules at start-up: refuse to start, say why
    services = Services(settings=settings, rules=manager, plugins=host, clock=Clock(clock))
    app = Litestar(
        route_handlers=[*ROUTE_HANDLERS, static_files()],
        template_config=template_config(),  # server-rendered pages (router/api/web.py)
        dependencies=services.providers(),
        lifespan=[_lifespan(services, store)],
        # Our handlers (router/api/errors.py) answer every HTTPException as a problem; the
        # plugin's own conversion would replace them (a bare "Request Entity Too Large").
        plugins=[ProblemDetailsPlugin(ProblemDetailsConfig(enable_for_all_http_exceptions=False))],
        exception_handlers=exception_handlers,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(title="leadrouter", version=__version__, path="/schema",
                                     description="Lead scoring and routing service.",
                                     # swagger and redoc from vendored assets (no CDN)
                                     render_plugins=openapi_renderers()),
        debug=False,
        # Logging is ours (router/observability/logs.py): litestar's default config would put
        # a plain-text handler on the root logger at INFO, so every library's INFO lines
        # (httpx's "HTTP Request: ..." per webhook) would land in the JSON log.
        logging_config=None,
    )
    # The published contract: every operation's problem responses, OPTIONS' full Allow
    # (router/api/openapi.py).
    declare_problems(app, store_backed=Connected._fields)
    complete_allow(app)
    resolve_dependencies_in_order(app)
    # Handlers use injection. Guards get no dependencies and read `settings` and the API keys
    # of `services` (router/api/auth.py, type-checked there); the 503 handler reads
    # `retry_after`.
    app.state.services = services
    app.state.settings = settings
    app.state.retry_after = settings.retry_after_seconds
    # Outside routing and the exception handlers: sees 404s and final status codes.
    app.asgi_handler = ObservabilityMiddleware(app.asgi_handler, access=settings.access_log)
    return app


async def _flush_metrics(interval: float) -> None:
    """Move the hot path's metric updates into prometheus-client
    (see router/observability/metrics.py)."""
    while True:
        await asyncio.sleep(interval)
        metrics.flush()


def app_from_env() -> Litestar:
    """Factory for ``uvicorn --factory`` in worker processes: settings from the environment."""
    from router.observability.logs import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return create_app(settings)
