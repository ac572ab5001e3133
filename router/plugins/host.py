"""Plugins: discovery, registration, isolation, and the hook calls the service makes.

:class:`PluginHost` wraps a pluggy ``PluginManager`` (project ``leadrouter``, hookspecs from
``leadrouter_sdk.hookspecs``). It finds plugins (:mod:`router.plugins._discovery`), refuses
unknown hook names and arguments at start-up (``check_pending`` and a signature check), and
calls each hook implementation **itself**, one by one, by keyword, so that one plugin can never
fail a lead:

* a call that raises, returns something invalid or runs past its time budget (``budget`` s,
  ``event_budget`` for ``on_event``) is skipped: the lead goes on without it, the explanation
  gets a ``plugins`` step saying what happened, ``leadrouter_plugin_errors_total`` counts it;
* after ``breaker_threshold`` consecutive failures the plugin's hook is switched off for
  ``breaker_cooldown`` seconds (:mod:`router.plugins._breaker`), then tried again.

Async implementations are awaited within the budget (cancelled past it). Sync ones run inline
(a thread hop would cost more than a cheap hook): one that returns after its budget has its
result discarded and counts as a timeout, so a plugin that blocks keeps tripping its breaker.

The engine stays pure: enrichment and scoring happen before :func:`evaluate` (contributions go in
through ``extra=``), expression functions go into the function table the rules are compiled with,
and a route override replaces the evaluation's route afterwards (``router/services/leads.py``).

This module registers plugins and makes the hook calls; the hook records are
router/plugins/_hooks.py, the failure handling router/plugins/_isolation.py, the checks of
what hooks return router/plugins/_results.py, the function table router/plugins/_functions.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import msgspec
import pluggy
from leadrouter_sdk import (
    Contribution,
    Decision,
    Event,
    Lead,
    RouteOverride,
    RouteProposal,
    ScoreContext,
    Step,
)
from leadrouter_sdk.hookspecs import PROJECT, HookSpecs

from router.engine.evaluate import Evaluation, Route, Snapshot, derived, evaluate
from router.engine.functions import Function
from router.engine.ruleset import Ruleset
from router.plugins._breaker import Breaker
from router.plugins._discovery import Candidate, discover, split_names
from router.plugins._functions import FunctionTable
from router.plugins._hooks import (
    HOOKS,
    SPEC_ARGS,
    DeliveryFailed,
    DeliveryRejected,
    Impl,
    PluginError,
    PluginInfo,
    accepted,
    hook_signatures,
    short,
)
from router.plugins._isolation import STAGE
from router.plugins._results import check_contributions, check_override, merge

__all__ = ["HOOKS", "DeliveryFailed", "DeliveryRejected", "PluginError", "PluginHost",
           "PluginInfo", "hook_signatures"]

log = logging.getLogger("leadrouter.plugins")


class PluginHost(FunctionTable):
    """The service's plugins. Build with :meth:`from_settings` (discovery) or construct and
    :meth:`register` objects (tests); call :meth:`close_registration` before serving."""

    def __init__(self, *, budget: float = 0.25, event_budget: float = 10.0,
                 breaker_threshold: int = 5, breaker_cooldown: float = 30.0,
                 strict: bool = False, clock: Callable[[], float] = time.monotonic,
                 metrics: bool = True) -> None:
        self.budget = budget
        self.metrics = metrics
        self.event_budget = event_budget
        self.breaker_threshold = breaker_threshold
        self.breaker_cooldown = breaker_cooldown
        self.strict = strict
        self.clock = clock
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(HookSpecs)
        # The hookspecs take keyword-only arguments, which pluggy does not list; tell it the
        # names so its registration check accepts implementations with ordinary parameters.
        for name, args in SPEC_ARGS.items():
            spec = getattr(self.pm.hook, name).spec
            if spec is not None:
                spec.argnames = args
        self.infos: dict[str, PluginInfo] = {}
        self._impls: dict[str, tuple[Impl, ...]] = {h: () for h in HOOKS}
        self._wants_context = False  # build a ScoreContext only for scorers that take one
        self._functions: dict[str, Function] | None = None
        self._function_owner: dict[str, str] = {}
        # (plugin, hook, outcome) -> count; outcome: ok | raised | timeout | invalid | skipped
        self.counts: dict[tuple[str, str, str], int] = {}
        self._concurrency: dict[str, int] = {}  # sink -> its declared `sink_concurrency`

    # -- discovery and registration --------------------------------------------------------

    @classmethod
    def from_settings(cls, settings: Any, *, entry_points: bool = True,
                      clock: Callable[[], float] = time.monotonic,
                      metrics: bool = True) -> PluginHost:
        """Discover and register the plugins ``settings`` allow (entry points, the modules in
        ``plugins``, minus ``plugins_block``). Raises :class:`PluginError` in strict mode.
        ``metrics=False`` keeps prometheus-client unimported (the serve supervisor, the CLI)."""
        host = cls(budget=settings.plugin_budget, event_budget=settings.plugin_event_budget,
                   breaker_threshold=settings.plugin_breaker_threshold,
                   breaker_cooldown=settings.plugin_breaker_cooldown,
                   strict=settings.plugins_strict, clock=clock, metrics=metrics)
        host.discover(entry_points=entry_points, modules=split_names(settings.plugins),
                      block=split_names(settings.plugins_block))
        return host

    def discover(self, *, entry_points: bool = True, modules: Iterable[str] = (),
                 block: Iterable[str] = ()) -> None:
        for candidate in discover(entry_points=entry_points, modules=modules,
                                  block=frozenset(block)):
            self._add(candidate)

    def register(self, plugin: object, name: str | None = None, *,
                 version: str | None = None) -> PluginInfo:
        """Register a plugin object (a module or an instance) directly."""
        name = name or getattr(plugin, "name", None) or getattr(plugin, "__name__", None) \
            or type(plugin).__name__
        return self._add(Candidate(name=str(name), source="registered",
                                   target=f"{type(plugin).__module__}", obj=plugin,
                                   version=version))

    def _add(self, c: Candidate) -> PluginInfo:
        info = PluginInfo(name=c.name, version=c.version, source=c.source, target=c.target,
                          status=c.status, error=c.error)
        self.infos[c.name] = info
        if c.status == "failed":
            self._problem(info, f"plugin {c.name} ({c.target}) failed to load: {c.error}")
            return info
        if c.status != "active":
            log.info("plugin %s is %s: %s", c.name, c.status, c.error)
            return info
        try:
            self.pm.register(c.obj, name=c.name)
        except Exception as exc:  # PluginValidationError, a duplicate name...
            info.status, info.error = "failed", short(exc)
            self._problem(info, f"plugin {c.name} refused: {info.error}")
            return info
        try:
            self.pm.check_pending()  # a @hookimpl whose name is not a hook
            for hook, impl in self._hookimpls_of(c.obj):
                accepted(impl.function, hook)
        except Exception as exc:
            self.pm.unregister(c.obj)
            info.status, info.error = "failed", short(exc)
            self._problem(info, f"plugin {c.name} refused: {info.error}")
            return info
        info.hooks = tuple(h for h in HOOKS if any(
            i.plugin is c.obj for i in getattr(self.pm.hook, h).get_hookimpls()))
        if "on_event" in info.hooks:
            self._concurrency[c.name] = _declared_concurrency(c.name, c.obj)
        self._rebuild()
        log.info("plugin %s %s loaded: %s", c.name, c.version or "", ", ".join(info.hooks))
        return info

    def _hookimpls_of(self, obj: object) -> list[tuple[str, Any]]:
        out = []
        for name in HOOKS:
            out += [(name, i) for i in getattr(self.pm.hook, name).get_hookimpls()
                    if i.plugin is obj]
        return out


    def _rebuild(self) -> None:
        old = {(i.plugin, i.hook): i.breaker for impls in self._impls.values() for i in impls}
        for hook in HOOKS:
            impls = []
            # pluggy's call order: tryfirst first, then the most recently registered first.
            for hi in reversed(getattr(self.pm.hook, hook).get_hookimpls()):
                plugin = hi.plugin_name
                breaker = old.get((plugin, hook)) or Breaker(
                    threshold=self.breaker_threshold, cooldown=self.breaker_cooldown,
                    clock=self.clock)
                impls.append(Impl(plugin, hook, hi.function, accepted(hi.function, hook),
                                   breaker, self.metrics))
            self._impls[hook] = tuple(impls)
        self._wants_context = any("context" in i.names for i in self._impls["score"])
        self._functions = None

    def has(self, hook: str) -> bool:
        return bool(self._impls[hook])

    @property
    def sinks(self) -> tuple[str, ...]:
        """Names of the plugins implementing ``on_event`` (one outbox consumer group each)."""
        return tuple(i.plugin for i in self._impls["on_event"])

    def sink_concurrency(self, plugin: str) -> int:
        """How many ``on_event`` calls of ``plugin`` may run at once, as it declared
        (``sink_concurrency``; 1 when it did not: its calls may not be safe to overlap)."""
        return self._concurrency.get(plugin, 1)

    def plugins(self) -> list[PluginInfo]:
        """Every plugin found, with its live breaker states."""
        for info in self.infos.values():
            info.breakers = {i.hook: i.breaker.state for impls in self._impls.values()
                             for i in impls if i.plugin == info.name
                             and i.breaker.state != "closed"}
        return sorted(self.infos.values(), key=lambda i: i.name)

    # -- the hooks the service calls -------------------------------------------------------

    async def enrich(self, lead: Lead) -> tuple[Lead, list[Step]]:
        """``lead`` with what enrichers added (never overwriting what it states), and the
        explanation steps (what was filled, what was skipped)."""
        impls = self._impls["enrich"]
        notes: list[Step] = []
        if not impls:
            return lead, notes
        results, pending = self._call_sync(impls, {"lead": lead}, self.budget, notes,
                                           "its enrichment was skipped")
        if pending:
            await self._await_all(impls, results, pending, self.budget, notes,
                                  "its enrichment was skipped")
        for impl, value in results:
            if value is None:
                self._ok(impl)
                continue
            if type(value) is not dict and not isinstance(value, Mapping):
                self._fail(impl, "invalid", f"returned {type(value).__name__}, not a mapping "
                           "of lead fields", notes, "its enrichment was skipped")
                continue
            try:
                lead, filled = merge(lead, value)
            except (ValueError, TypeError, msgspec.ValidationError) as exc:
                self._fail(impl, "invalid", f"returned invalid fields ({short(exc)})", notes,
                           "its enrichment was skipped")
                continue
            self._ok(impl)
            if filled:
                notes.append(Step(stage=STAGE, outcome="enriched", rule=impl.plugin,
                                  detail=f"enrich filled {', '.join(filled)}"))
        return lead, notes

    def context(self, lead: Lead, *, now: dt.datetime, rules_version: str,
                account_owner: str | None, env: Mapping[str, Any] | None = None
                ) -> ScoreContext:
        """``env``: ``derived()`` of ``lead`` if the caller has it already."""
        if env is None:
            env = derived(lead, Snapshot(account_owner=account_owner), now)
        return ScoreContext(now=now, rules_version=rules_version, account_owner=account_owner,
                            email_domain=env["email_domain"],
                            company_domain=env["company_domain"],
                            free_email=env["free_email"],
                            disposable_email=env["disposable_email"], region=env["region"])

    async def score(self, lead: Lead, context: ScoreContext
                    ) -> tuple[tuple[Contribution, ...], list[Step]]:
        """Every scorer's contributions (valid ones only) and the explanation steps."""
        impls = self._impls["score"]
        notes: list[Step] = []
        if not impls:
            return (), notes
        out: list[Contribution] = []
        what = "its contribution was skipped"
        results, pending = self._call_sync(impls, {"lead": lead, "context": context},
                                           self.budget, notes, what)
        if pending:
            await self._await_all(impls, results, pending, self.budget, notes, what)
        for impl, value in results:
            if value is None:
                self._ok(impl)
                continue
            items, problem = check_contributions(value)
            if problem is not None:
                self._fail(impl, "invalid", problem, notes, what)
                continue
            self._ok(impl)
            out.extend(items)
        return tuple(out), notes

    async def route(self, lead: Lead, ev: Evaluation, ruleset: Ruleset
                    ) -> tuple[Evaluation, list[Step]]:
        """``ev`` with the first valid override's route, and the explanation steps."""
        impls = self._impls["route"]
        notes: list[Step] = []
        if not impls:
            return ev, notes
        r = ev.route
        proposal = RouteProposal(status=ev.status, score=ev.score, territory=ev.territory,
                                 segment=ev.segment, kind=r.kind, target=r.target, rule=r.rule,
                                 reason=r.reason, sla_policy=ev.sla_policy,
                                 rules_version=ev.rules_version, matched=ev.matched)
        what = "its route override was ignored"
        # firstresult: stop at the first plugin that answers; so call them one at a time.
        for impl in impls:
            results = await self._call_all((impl,), {"lead": lead, "decision": proposal},
                                           self.budget, notes, what)
            if not results:
                continue
            value = results[0][1]
            if value is None:
                self._ok(impl)
                continue
            problem = check_override(value, ruleset)
            if problem:
                self._fail(impl, "invalid", problem, notes, what)
                continue
            assert isinstance(value, RouteOverride)
            self._ok(impl)
            route = Route(kind=value.kind, target=value.target, rule=f"plugin:{impl.plugin}",
                          reason=value.reason or f"routed by plugin {impl.plugin}")
            notes.append(Step(stage=STAGE, outcome=f"{route.kind}:{route.target}",
                              rule=impl.plugin, detail=(
                                  f"route override: {route.reason} (the rules chose "
                                  f"{r.kind}:{r.target})")))
            return msgspec.structs.replace(ev, route=route), notes
        return ev, notes

    async def evaluate(self, ruleset: Ruleset, lead: Lead, snapshot: Snapshot, *,
                       now: dt.datetime, notes: Sequence[Step] = (),
                       evaluator: Any = None, env: Mapping[str, Any] | None = None
                       ) -> tuple[Evaluation, tuple[Step, ...]]:
        """Score hooks → the pure engine (their contributions as ``extra``) → route hooks.
        Returns the evaluation and the plugin steps for the explanation (``notes`` first).
        ``env``: ``derived()`` of ``lead`` if the caller has it already."""
        steps = list(notes)
        extra: tuple[Contribution, ...] = ()
        if self._impls["score"]:
            context = self.context(lead, now=now, rules_version=ruleset.version,
                                   account_owner=snapshot.account_owner, env=env) \
                if self._wants_context else None
            extra, more = await self.score(lead, context)  # type: ignore[arg-type]
            steps += more
        if evaluator is None:
            ev = evaluate(ruleset, lead, snapshot, now=now, extra=extra)
        else:  # the configured engine (RulesManager.evaluator)
            ev = evaluator(lead, snapshot, now=now, extra=extra)
        if self._impls["route"]:
            ev, more = await self.route(lead, ev, ruleset)
            steps += more
        return ev, tuple(steps)

    async def on_decision(self, lead: Lead, decision: Decision) -> None:
        impls = self._impls["on_decision"]
        if not impls:
            return
        for impl, _ in await self._call_all(impls, {"lead": lead, "decision": decision},
                                            self.budget, None, "ignored"):
            self._ok(impl)

    def sink_ready(self, plugin: str) -> bool:
        """False while the plugin's ``on_event`` breaker is open (do not claim events)."""
        for impl in self._impls["on_event"]:
            if impl.plugin == plugin:
                b = impl.breaker
                return b.state == "closed" or (b.state == "open" and b.remaining() == 0) \
                    or (b.state == "half_open" and not b.trial)
        return False

    async def shutdown(self) -> None:
        """Call every plugin's ``shutdown`` once (the service's lifespan end), each within the
        event budget; one that raises or runs past it is logged, never stops the others."""
        impls, self._impls["shutdown"] = self._impls["shutdown"], ()  # once
        for impl in impls:
            try:
                result = impl.fn()
                if inspect.isawaitable(result):
                    await asyncio.wait_for(result, self.event_budget)
            except Exception as exc:  # TimeoutError included: stopping goes on
                log.warning("plugin %s: shutdown() failed: %s", impl.plugin, short(exc))

    async def deliver(self, plugin: str, event: Event) -> None:
        """Hand ``event`` to ``plugin``'s ``on_event``; raises :class:`DeliveryFailed` unless
        it returned within the event budget (the outbox then keeps it for a retry), and
        :class:`DeliveryRejected` when the plugin refused it for good
        (``PermanentDeliveryError``: the outbox dead-letters it at once)."""
        impl = next((i for i in self._impls["on_event"] if i.plugin == plugin), None)
        if impl is None:
            raise DeliveryFailed(f"no plugin {plugin!r} with on_event")
        await self._call_sink(impl, event, self.event_budget)


def _declared_concurrency(name: str, obj: object) -> int:
    """A sink's ``sink_concurrency`` attribute (on the plugin object, its class or module),
    like ``name`` and ``__version__``: a fact, not a call. Not an int >= 1: 1, logged (a typo
    must not stop the service, and one at a time is always safe)."""
    value = getattr(obj, "sink_concurrency", 1)
    if type(value) is int and value >= 1:
        return value
    log.warning("plugin %s: sink_concurrency must be an int >= 1, not %r; delivering its "
                "events one at a time", name, value)
    return 1
