"""The litestar application: ``create_app(settings)``. Wiring only — no behaviour lives here."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gc
import logging
from collections.abc import AsyncIterator, Callable

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsPlugin

from router import __version__
from router.api import accounts, forms, health, leads, people, reps, sources, status
from router.api import events as events_api
from router.api import owner as owner_api
from router.api import rules as rules_api
from router.api import sla as sla_api
from router.api.errors import exception_handlers
from router.engine.ruleset import Ruleset
from router.observability import metrics
from router.observability.instrument import InstrumentedStore
from router.observability.middleware import ObservabilityMiddleware
from router.plugins.delivery import run_sinks
from router.plugins.host import PluginHost
from router.services.engagement import EngagementService
from router.services.leads import LeadService
from router.services.retention import log_warnings
from router.services.rules import RulesManager
from router.services.sla import SlaService
from router.settings import Settings
from router.state.engagement import EngagementLimits, EngagementStore
from router.state.errors import StateError
from router.state.rules_sync import bump_rules_generation, rules_generation
from router.state.store import Store

__all__ = ["Context", "app_from_env", "create_app"]

log = logging.getLogger("leadrouter")


class Context:
    """What request handlers need: settings, the live rules, the store and the clock."""

    def __init__(self, settings: Settings, rules: RulesManager, *,
                 clock: Callable[[], datetime.datetime] | None = None,
                 plugins: PluginHost | None = None) -> None:
        self.settings = settings
        self.rules = rules
        self.plugins = plugins
        self.now = clock or (lambda: datetime.datetime.now(datetime.UTC))
        self._store: Store | None = None
        self.leads: LeadService | None = None
        self.engagement: EngagementService | None = None
        self.sla: SlaService | None = None
        self._rules_generation: int | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the store is not connected")
        return self._store

    def attach(self, store: Store) -> None:
        self._store = store
        metrics.ROUND_TRIP_SOURCE.attach(store)
        self.leads = LeadService(store=store, rules=self.rules, settings=self.settings,
                                 clock=self.now, plugins=self.plugins)
        limits = EngagementLimits.retained(self.settings.engagement_retention * 1000)
        self.engagement = EngagementService(state=EngagementStore(store, limits),
                                            rules=self.rules, leads=self.leads, clock=self.now)
        self.leads.engagement = self.engagement
        self.sla = SlaService(store=store, rules=self.rules, settings=self.settings,
                              clock=self.now)

    async def store_ok(self) -> bool:
        if self._store is None:
            return False
        try:
            await self._store.ping()
        except StateError:
            return False
        return True

    async def announce_rules(self) -> None:
        """Tell the other workers to re-read the rules directory (admin reloads)."""
        with contextlib.suppress(StateError):
            self._rules_generation = await bump_rules_generation(self.store)

    async def watch_rules(self) -> None:
        """Poll the rules directory and the shared generation counter; reload on change."""
        interval = self.settings.reload_poll_seconds
        while interval > 0:
            await asyncio.sleep(interval)
            generation: int | None = self._rules_generation
            with contextlib.suppress(StateError):
                generation = await rules_generation(self.store)
            bumped = generation is not None and generation != self._rules_generation
            if self.rules.changed_on_disk() or bumped:
                self._rules_generation = generation
                self.rules.reload(reason="generation" if bumped else "file change")


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
    ctx = Context(settings, manager, clock=clock, plugins=host)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        owned = store is None
        if store is None:
            # verify=False: start even while Redis is down (503 until it is back); scripts are
            # loaded now if possible, else on first use (EVALSHA falls back on NOSCRIPT).
            connected = await InstrumentedStore.connect(
                settings.redis_url or "", prefix=settings.key_prefix, verify=False,
                retention=datetime.timedelta(seconds=settings.decision_retention),
                inflight_ttl=datetime.timedelta(seconds=settings.inflight_timeout),
                idempotency_retention=datetime.timedelta(
                    seconds=settings.idempotency_retention),
                sla_facts_maxlen=settings.sla_facts_maxlen,
                outbox_maxlen=settings.outbox_maxlen)
            with contextlib.suppress(StateError):
                await connected.load_scripts()
        ctx.attach(store or connected)

        def retention_check(ruleset: Ruleset) -> None:  # at start and after every reload
            log_warnings(ruleset, retention=settings.engagement_retention,
                         decision_retention=settings.decision_retention)

        retention_check(manager.current)
        manager.listeners.append(retention_check)
        with contextlib.suppress(StateError):
            ctx._rules_generation = await rules_generation(ctx.store)
        watcher = asyncio.create_task(ctx.watch_rules(), name="rules-watcher")
        flusher = asyncio.create_task(_flush_metrics(settings.metrics_flush_seconds),
                                      name="metrics-flush")
        tasks = [watcher, flusher]
        # breach worker (router/services/sla.py)
        if settings.sla_poll_seconds > 0 and ctx.sla is not None:
            tasks.append(asyncio.create_task(ctx.sla.run(), name="sla-worker"))
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
        gc.set_threshold(settings.gc_threshold, *gc.get_threshold()[1:])
        try:
            async with run_sinks(ctx.store, host, settings):  # outbox → on_event
                yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            metrics.mark_process_dead()
            manager.listeners.remove(retention_check)
            if owned:
                await ctx.store.close()

    app = Litestar(
        route_handlers=[health.livez, health.readyz, rules_api.get_rules,
                        rules_api.reload_rules, rules_api.evaluate_lead, *leads.handlers,
                        *events_api.handlers,
                        *reps.handlers,
                        *accounts.handlers, *status.handlers, *forms.handlers,
                        *sources.handlers, *people.handlers, *owner_api.handlers,
                        *sla_api.handlers],
        lifespan=[lifespan],
        plugins=[ProblemDetailsPlugin(ProblemDetailsConfig(enable_for_all_http_exceptions=True))],
        exception_handlers=exception_handlers,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(title="leadrouter", version=__version__, path="/schema",
                                     description="Lead scoring and routing service."),
        debug=False,
    )
    app.state.ctx = ctx
    # Outside routing and the exception handlers: sees 404s and final status codes.
    app.asgi_handler = ObservabilityMiddleware(app.asgi_handler, access=settings.access_log)
    app.state.retry_after = settings.retry_after_seconds
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
