"""The typed holder of one worker's services, and the litestar providers that hand them to
request handlers (``leads: LeadService``, ``settings: Settings``, ``clock: Clock`` ...).

What needs Redis is built in the app's lifespan, once the store is connected
(:meth:`Services.connect`); until then asking for it is a 503 (``StateUnavailable``), as for a
Redis outage. Providers are synchronous attribute reads (``sync_to_thread=False``): no thread
hop, no per-request construction — ``POST /v1/leads`` is the hot path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from litestar import Litestar
from litestar.di import Provide
from litestar.routes import HTTPRoute

from router.plugins.host import PluginHost
from router.services.action_links import ActionLinks
from router.services.audit import AuditLog
from router.services.change_gate import (
    ChangeLimit,
    GateResult,
    gated_reload,
    parse_max_change,
)
from router.services.clock import Clock
from router.services.directory import DirectoryService
from router.services.engagement import EngagementService
from router.services.funnel import FunnelService
from router.services.health import Health
from router.services.keys import ApiKeys
from router.services.leads import LeadService
from router.services.lists import ListService
from router.services.outcome_reader import CalibrationService
from router.services.outcomes import OutcomeService
from router.services.privacy import PrivacyService
from router.services.ratelimit import RateLimits, WebhookReplays
from router.services.replay import ReplayService
from router.services.rules import ReloadResult, RulesManager
from router.services.rules_watch import Gated, RulesWatcher
from router.services.shadow import ShadowService
from router.services.sla import SlaService
from router.settings import Settings, SettingsError
from router.state.errors import StateUnavailable
from router.state.store import Store

__all__ = ["Connected", "Services", "resolve_dependencies_in_order"]


class Connected(NamedTuple):
    """The services that speak to the store, built together once it is connected."""

    store: Store
    leads: LeadService
    engagement: EngagementService
    sla: SlaService
    privacy: PrivacyService
    directory: DirectoryService
    keys: ApiKeys
    rate_limits: RateLimits
    replays: WebhookReplays
    audit: AuditLog
    links: ActionLinks  # signed action links (router/api/actions.py)
    lists: ListService  # the list APIs (router/api/lists.py) and the console's lists


class Services:
    """Settings, rules, plugins and clock from the start; the rest from :meth:`connect`."""

    def __init__(self, *, settings: Settings, rules: RulesManager, plugins: PluginHost,
                 clock: Clock) -> None:
        self.settings = settings
        self.rules = rules
        self.plugins = plugins
        self.clock = clock
        self.health = Health(rules=rules, settings=settings, clock=clock)
        self.watcher = RulesWatcher(rules, poll_seconds=settings.reload_poll_seconds,
                                    settle_seconds=settings.reload_settle_seconds)
        self.shadow = shadow_of(settings, plugins, clock)  # LEADROUTER_SHADOW_RULES
        self.watcher.limits = max_change_of(settings)  # LEADROUTER_RELOAD_MAX_CHANGE
        if self.shadow is not None:
            self.watcher.followers.append(self.shadow.poll)
        self._connected: Connected | None = None
        self._provided = _Provided()

    def connect(self, connected: Connected) -> None:
        self._connected = connected
        self._provided.update(connected._asdict())
        # What-if replays (POST /v1/rules/replay, the console, the reload gate): reads only, on
        # the same store, yielding to live requests every 0.5 ms of deciding (ReplayService).
        replay = self._provided["replay"] = ReplayService(connected.store, plugins=self.plugins,
                                                          slice_seconds=0.0005)
        # Score calibration (GET /v1/scoring/calibration): reads only, page by page.
        self._provided["calibration"] = CalibrationService(connected.store)
        # Outcomes in (POST /v1/leads/{id}/outcome, /v1/outcomes) and GET /v1/funnel.
        self._provided["outcomes"] = OutcomeService(connected.store, rules=self.rules,
                                                    clock=self.clock)
        self._provided["funnel"] = FunnelService(connected.store, rules=self.rules,
                                                 clock=self.clock)
        if self.shadow is not None:
            connected.leads.shadow = self.shadow.submit
        self.watcher.gated = reload_gate(self.rules, replay, self.clock)
        self.watcher.record = connected.audit.record  # rules reloads in the audit log
        self.health.store = connected.store

    @property
    def connected(self) -> Connected:
        if self._connected is None:
            raise StateUnavailable("the state store is not connected yet")
        return self._connected

    # One property per connected service: what the providers (and tests) read.
    @property
    def store(self) -> Store:
        return self.connected.store

    @property
    def leads(self) -> LeadService:
        return self.connected.leads

    @property
    def engagement(self) -> EngagementService:
        return self.connected.engagement

    @property
    def sla(self) -> SlaService:
        return self.connected.sla

    @property
    def privacy(self) -> PrivacyService:
        return self.connected.privacy

    @property
    def directory(self) -> DirectoryService:
        return self.connected.directory

    @property
    def keys(self) -> ApiKeys:
        return self.connected.keys

    @property
    def rate_limits(self) -> RateLimits:
        return self.connected.rate_limits

    @property
    def replays(self) -> WebhookReplays:
        return self.connected.replays

    @property
    def links(self) -> ActionLinks:
        return self.connected.links

    @property
    def audit(self) -> AuditLog:
        return self.connected.audit

    @property
    def lists(self) -> ListService:
        return self.connected.lists

    def providers(self) -> dict[str, Provide]:
        """The app's dependencies: a handler parameter with one of these names (and the
        matching type) gets that service."""
        names = ("settings", "rules", "plugins", "clock", "health", "watcher", "leads",
                 "engagement", "sla", "privacy", "directory", "keys", "rate_limits", "replays",
                 "replay", "shadow", "audit", "calibration", "links", "outcomes", "funnel",
                 "lists")
        # One dict read per dependency and request (no property chain on the hot path); the
        # services that need the store join it in connect(), and asking for one before that
        # is a 503 (_Provided.__missing__).
        provided = self._provided
        provided.update(settings=self.settings, rules=self.rules, plugins=self.plugins,
                        clock=self.clock, health=self.health, watcher=self.watcher,
                        shadow=self.shadow)

        def read(name: str) -> Callable[[], Any]:
            return lambda: provided[name]

        return {name: Provide(read(name), sync_to_thread=False) for name in names}


def shadow_of(settings: Settings, plugins: PluginHost, clock: Clock) -> ShadowService | None:
    """Shadow mode's service when LEADROUTER_SHADOW_RULES is set, its rules loaded (a broken
    directory is counted and logged, never a reason not to start)."""
    if not settings.shadow_rules:
        return None
    shadow = ShadowService(settings.shadow_rules, plugins=plugins, functions=plugins.functions(),
                           clock=clock, retention=settings.decision_retention)
    shadow.load()
    return shadow


def max_change_of(settings: Settings) -> list[ChangeLimit]:
    """LEADROUTER_RELOAD_MAX_CHANGE's limits (none: the gate is off); raises SettingsError."""
    if not settings.reload_max_change:
        return []
    try:
        return parse_max_change(settings.reload_max_change)
    except ValueError as exc:
        raise SettingsError(f"LEADROUTER_RELOAD_MAX_CHANGE: {exc}") from None


def reload_gate(rules: RulesManager, replay: ReplayService, clock: Clock) -> Gated:
    """Reloads through the gate (router/services/change_gate.py) on ``replay``'s store."""

    async def gated(limits: list[ChangeLimit], reason: str
                    ) -> tuple[ReloadResult, GateResult | None]:
        return await gated_reload(rules, replay, limits, now=clock(), reason=reason)

    return gated


class _Provided(dict[str, object]):
    """What the providers hand out, by name."""

    def __missing__(self, name: str) -> object:
        raise StateUnavailable(f"the state store is not connected yet ({name} needs it)")


def resolve_dependencies_in_order(app: Litestar) -> None:
    """Resolve each handler's dependencies one after another.

    litestar resolves dependencies that do not depend on each other concurrently, in an anyio
    task group: measured at +55 us per request for a handler with two of them (two tasks and a
    cancel scope), a third of the framework's whole cost of a request. Ours are attribute
    reads, so running them in their (topological) order is the same result without that; this
    flattens the batches litestar computed at start-up. Without the attribute (another litestar
    version) nothing changes but the speed.
    """
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for _, model in route.route_handler_map.values():
            batches = getattr(model, "dependency_batches", None)
            if batches:
                model.dependency_batches = [{dep} for batch in batches for dep in batch]
