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

The engine stays pure: enrichment and scoring happen before :func:`evaluate` (contributions go
in through ``extra=``), expression functions go into the function table the rules are compiled
with, and a route override replaces the evaluation's route afterwards
(``router/services/leads.py``).
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import inspect
import keyword
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import msgspec
import pluggy
from leadrouter_sdk import (
    Contribution,
    Decision,
    Event,
    ExpressionFunction,
    Lead,
    RouteOverride,
    RouteProposal,
    ScoreContext,
    Step,
    lead_from_mapping,
)
from leadrouter_sdk.hookspecs import PROJECT, HookSpecs

from router.engine.evaluate import Evaluation, Route, Snapshot, derived, evaluate
from router.engine.functions import BUILTINS, Function
from router.engine.ruleset import Ruleset
from router.plugins._breaker import Breaker
from router.plugins._discovery import Candidate, discover, split_names
from router.plugins._metrics import NULL_SERIES, Series, series

__all__ = ["HOOKS", "PluginError", "PluginHost", "PluginInfo", "hook_signatures"]

log = logging.getLogger("leadrouter.plugins")

HOOKS = ("enrich", "score", "register_functions", "route", "on_decision", "on_event")
_VALUE_TYPES = frozenset({"number", "text", "boolean", "datetime", "any"})
_LEAD_FIELDS = frozenset(Lead.__struct_fields__)
_STAGE = "plugins"
_PLAIN = frozenset({dict, list, tuple, Contribution, RouteOverride})


def _finite(x: float) -> bool:
    return x - x == 0  # False for NaN and ±inf (msgspec checked the type is a number)


class PluginError(RuntimeError):
    """A plugin problem that stops start-up: any plugin failure in strict mode."""


def hook_signatures() -> dict[str, inspect.Signature]:
    """The exact signature of every hookspec (without ``self``), by hook name."""
    out = {}
    for name in HOOKS:
        sig = inspect.signature(getattr(HookSpecs, name))
        params = [p for p in sig.parameters.values() if p.name != "self"]
        out[name] = sig.replace(parameters=params)
    return out


_SPEC_ARGS = {name: tuple(sig.parameters) for name, sig in hook_signatures().items()}


class PluginInfo(msgspec.Struct, kw_only=True):
    """One plugin as ``leadrouter plugins list`` and ``GET /v1/plugins`` show it."""

    name: str
    version: str | None
    source: str
    target: str
    hooks: tuple[str, ...] = ()
    status: str = "active"  # active | blocked | disabled | failed
    error: str | None = None
    functions: tuple[str, ...] = ()
    breakers: dict[str, str] = {}  # hook -> closed | open | half_open, only when not closed
    problems: tuple[str, ...] = ()  # non-fatal: a refused expression function...


class _Impl:
    """One hook implementation of one plugin, with its breaker and metric children."""

    __slots__ = ("breaker", "fn", "hook", "names", "plugin", "series")

    def __init__(self, plugin: str, hook: str, fn: Callable[..., Any], names: tuple[str, ...],
                 breaker: Breaker, metrics: bool) -> None:
        self.plugin = plugin
        self.hook = hook
        self.fn = fn
        self.names = names
        self.breaker = breaker
        self.series: Series = series(plugin, hook) if metrics else NULL_SERIES


def _accepted(fn: Callable[..., Any], hook: str) -> tuple[str, ...]:
    """The hook arguments ``fn`` takes, by name; raises ValueError for unknown ones."""
    spec = _SPEC_ARGS[hook]
    params = list(inspect.signature(fn).parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return spec
    names = []
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            continue
        if p.name in spec:
            if p.kind is p.POSITIONAL_ONLY:
                raise ValueError(f"{hook}(): argument `{p.name}` must not be positional-only "
                                 "(hooks are called by keyword)")
            names.append(p.name)
        elif p.default is p.empty:
            raise ValueError(f"{hook}() has no argument `{p.name}`; it takes "
                             f"{', '.join(spec) or 'no arguments'}")
    return tuple(names)


def _short(exc: BaseException) -> str:
    text = str(exc)
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class PluginHost:
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
        for name, args in _SPEC_ARGS.items():
            spec = getattr(self.pm.hook, name).spec
            if spec is not None:
                spec.argnames = args
        self.infos: dict[str, PluginInfo] = {}
        self._impls: dict[str, tuple[_Impl, ...]] = {h: () for h in HOOKS}
        self._wants_context = False  # build a ScoreContext only for scorers that take one
        self._functions: dict[str, Function] | None = None
        self._function_owner: dict[str, str] = {}
        # (plugin, hook, outcome) -> count; outcome: ok | raised | timeout | invalid | skipped
        self.counts: dict[tuple[str, str, str], int] = {}

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
            info.status, info.error = "failed", _short(exc)
            self._problem(info, f"plugin {c.name} refused: {info.error}")
            return info
        try:
            self.pm.check_pending()  # a @hookimpl whose name is not a hook
            for hook, impl in self._hookimpls_of(c.obj):
                _accepted(impl.function, hook)
        except Exception as exc:
            self.pm.unregister(c.obj)
            info.status, info.error = "failed", _short(exc)
            self._problem(info, f"plugin {c.name} refused: {info.error}")
            return info
        info.hooks = tuple(h for h in HOOKS if any(
            i.plugin is c.obj for i in getattr(self.pm.hook, h).get_hookimpls()))
        self._rebuild()
        log.info("plugin %s %s loaded: %s", c.name, c.version or "", ", ".join(info.hooks))
        return info

    def _hookimpls_of(self, obj: object) -> list[tuple[str, Any]]:
        out = []
        for name in HOOKS:
            out += [(name, i) for i in getattr(self.pm.hook, name).get_hookimpls()
                    if i.plugin is obj]
        return out

    def _problem(self, info: PluginInfo, message: str) -> None:
        if self.strict:
            raise PluginError(message + " (strict mode: LEADROUTER_PLUGINS_STRICT)")
        log.error("%s; continuing without it", message)

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
                impls.append(_Impl(plugin, hook, hi.function, _accepted(hi.function, hook),
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

    def plugins(self) -> list[PluginInfo]:
        """Every plugin found, with its live breaker states."""
        for info in self.infos.values():
            info.breakers = {i.hook: i.breaker.state for impls in self._impls.values()
                             for i in impls if i.plugin == info.name
                             and i.breaker.state != "closed"}
        return sorted(self.infos.values(), key=lambda i: i.name)

    # -- expression functions --------------------------------------------------------------

    def functions(self) -> dict[str, Function]:
        """Built-ins plus every valid function plugins register (computed once)."""
        if self._functions is not None:
            return self._functions
        table = dict(BUILTINS)
        for impl in self._impls["register_functions"]:
            info = self.infos[impl.plugin]
            try:
                declared = list(impl.fn(**{}) or ())
            except Exception as exc:
                self._count(impl, "raised")
                self._problem(info, f"plugin {impl.plugin}: register_functions() raised "
                              f"{_short(exc)}")
                continue
            names = []
            for fn in declared:
                problem = self._check_function(fn, table)
                if problem:
                    info.problems = (*info.problems, problem)
                    self._problem(info, f"plugin {impl.plugin}: {problem}")
                    continue
                assert isinstance(fn, ExpressionFunction)
                table[fn.name] = Function(name=fn.name, impl=fn.impl, params=fn.params,
                                          returns=fn.returns, doc=fn.doc,
                                          example=fn.example or f"{fn.name}(...)")
                self._function_owner[fn.name] = impl.plugin
                names.append(fn.name)
            info.functions = tuple(names)
            self._count(impl, "ok")
        self._functions = table
        return table

    def _check_function(self, fn: Any, table: Mapping[str, Function]) -> str | None:
        if not isinstance(fn, ExpressionFunction):
            return f"register_functions() returned {type(fn).__name__}, not ExpressionFunction"
        name = fn.name
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_") \
                or name in ("true", "false", "null"):
            return f"function name {name!r} is not a valid rule function name"
        if name in table:
            owner = self._function_owner.get(name, "built-in")
            return f"function {name}() is already defined ({owner}); not registered"
        impl: Any = fn.impl  # Structs are not type-checked when constructed
        if not callable(impl):
            return f"function {name}(): impl is not callable"
        bad = [t for t in (*fn.params, fn.returns) if t not in _VALUE_TYPES]
        if bad:
            return (f"function {name}(): unknown value type {bad[0]!r}; use "
                    f"{', '.join(sorted(_VALUE_TYPES))}")
        return None

    # -- isolation ---------------------------------------------------------------------------

    def _count(self, impl: _Impl, outcome: str) -> None:
        key = (impl.plugin, impl.hook, outcome)
        self.counts[key] = self.counts.get(key, 0) + 1

    def _ok(self, impl: _Impl) -> None:
        impl.breaker.success()
        self._count(impl, "ok")

    def _fail(self, impl: _Impl, outcome: str, detail: str, notes: list[Step] | None,
              what: str) -> None:
        """Record a failed call; add an explanation step to ``notes``."""
        self._count(impl, outcome)
        impl.series.errors.inc()
        opened = impl.breaker.failure()
        text = f"{impl.hook} {detail}; {what}"
        if opened:
            text += (f" — switched off for {impl.breaker.cooldown:g} s after "
                     f"{impl.breaker.failures} consecutive failures")
            log.warning("plugin %s: %s hook switched off for %g s after %d failures",
                        impl.plugin, impl.hook, impl.breaker.cooldown, impl.breaker.failures)
        if notes is not None:
            notes.append(Step(stage=_STAGE, outcome="skipped", rule=impl.plugin, detail=text))

    def _skip(self, impl: _Impl, notes: list[Step] | None, what: str) -> None:
        self._count(impl, "skipped")
        if notes is not None:
            notes.append(Step(stage=_STAGE, outcome="skipped", rule=impl.plugin, detail=(
                f"{impl.hook} is switched off after repeated failures (retried in "
                f"{impl.breaker.remaining():.0f} s); {what}")))

    async def _call_all(self, impls: Sequence[_Impl], kwargs: Mapping[str, Any],
                        budget: float, notes: list[Step] | None,
                        what: str) -> list[tuple[_Impl, Any]]:
        """Call every implementation; the (impl, result) of those that returned in time.
        Failures are recorded here; the caller validates results and calls _ok / _fail."""
        done, pending = self._call_sync(impls, kwargs, budget, notes, what)
        if pending:
            await self._await_all(impls, done, pending, budget, notes, what)
        return done

    def _call_sync(self, impls: Sequence[_Impl], kwargs: Mapping[str, Any], budget: float,
                   notes: list[Step] | None, what: str
                   ) -> tuple[list[tuple[_Impl, Any]], list[tuple[_Impl, Awaitable[Any], float]]]:
        """Call every implementation; sync results are done, awaitables pending."""
        done: list[tuple[_Impl, Any]] = []
        pending: list[tuple[_Impl, Awaitable[Any], float]] = []
        for impl in impls:
            if not impl.breaker.allow():
                self._skip(impl, notes, what)
                continue
            impl.series.calls.inc()
            start = time.perf_counter()
            try:
                value = impl.fn(**{n: kwargs[n] for n in impl.names})
            except Exception as exc:
                impl.series.duration.observe(time.perf_counter() - start)
                self._fail(impl, "raised", f"raised {_short(exc)}", notes, what)
                continue
            if value is not None and type(value) not in _PLAIN and inspect.isawaitable(value):
                pending.append((impl, value, start))
                continue
            elapsed = time.perf_counter() - start
            impl.series.duration.observe(elapsed)
            if elapsed > budget:
                self._fail(impl, "timeout", f"took {elapsed * 1000:.0f} ms, past its "
                           f"{budget * 1000:.0f} ms budget", notes, what)
                continue
            done.append((impl, value))
        return done, pending

    async def _await_all(self, impls: Sequence[_Impl], done: list[tuple[_Impl, Any]],
                         pending: list[tuple[_Impl, Awaitable[Any], float]], budget: float,
                         notes: list[Step] | None, what: str) -> None:
        if pending:
            results = await asyncio.gather(*(self._await(impl, aw, start, budget)
                                              for impl, aw, start in pending))
            for (impl, _, _), (ok, value) in zip(pending, results, strict=True):
                if ok:
                    done.append((impl, value))
                else:
                    outcome, detail = value
                    self._fail(impl, outcome, detail, notes, what)
            order = {id(impl): i for i, impl in enumerate(impls)}
            done.sort(key=lambda pair: order[id(pair[0])])

    async def _await(self, impl: _Impl, aw: Awaitable[Any], start: float,
                     budget: float) -> tuple[bool, Any]:
        try:
            async with asyncio.timeout(max(0.0, budget - (time.perf_counter() - start))):
                value = await aw
        except TimeoutError:
            impl.series.duration.observe(time.perf_counter() - start)
            return False, ("timeout", f"ran past its {budget * 1000:.0f} ms budget")
        except Exception as exc:
            impl.series.duration.observe(time.perf_counter() - start)
            return False, ("raised", f"raised {_short(exc)}")
        impl.series.duration.observe(time.perf_counter() - start)
        return True, value

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
                lead, filled = _merge(lead, value)
            except (ValueError, TypeError, msgspec.ValidationError) as exc:
                self._fail(impl, "invalid", f"returned invalid fields ({_short(exc)})", notes,
                           "its enrichment was skipped")
                continue
            self._ok(impl)
            if filled:
                notes.append(Step(stage=_STAGE, outcome="enriched", rule=impl.plugin,
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
            items = (value,) if isinstance(value, Contribution) else value
            try:
                items = tuple(items)
            except TypeError:
                self._fail(impl, "invalid", f"returned {type(value).__name__}, not "
                           "contributions", notes, what)
                continue
            bad = None
            for c in items:
                if type(c) is not Contribution or not _finite(c.points):
                    bad = c
                    break
            if bad is not None:
                self._fail(impl, "invalid", f"returned {bad!r}, not a Contribution with "
                           "finite points", notes, what)
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
            problem = _check_override(value, ruleset)
            if problem:
                self._fail(impl, "invalid", problem, notes, what)
                continue
            assert isinstance(value, RouteOverride)
            self._ok(impl)
            route = Route(kind=value.kind, target=value.target, rule=f"plugin:{impl.plugin}",
                          reason=value.reason or f"routed by plugin {impl.plugin}")
            notes.append(Step(stage=_STAGE, outcome=f"{route.kind}:{route.target}",
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

    async def deliver(self, plugin: str, event: Event) -> None:
        """Hand ``event`` to ``plugin``'s ``on_event``; raises :class:`DeliveryFailed` unless
        it returned within the event budget (the outbox then keeps it for a retry)."""
        impl = next((i for i in self._impls["on_event"] if i.plugin == plugin), None)
        if impl is None:
            raise DeliveryFailed(f"no plugin {plugin!r} with on_event")
        notes: list[Step] = []
        results = await self._call_all((impl,), {"event": event}, self.event_budget, notes,
                                       "it will be delivered again")
        if not results:
            raise DeliveryFailed(notes[0].detail if notes else "not delivered")
        self._ok(impl)


class DeliveryFailed(Exception):
    """A sink did not take an event (raised, timed out, or is switched off)."""


def _check_override(value: Any, ruleset: Ruleset) -> str | None:
    if not isinstance(value, RouteOverride):
        return f"returned {type(value).__name__}, not a RouteOverride"
    if value.pool and value.pool not in ruleset.pools:
        return f"overrode the route to unknown pool {value.pool!r}"
    if value.owner and value.owner not in ruleset.reps:
        return f"overrode the route to unknown rep {value.owner!r}"
    return None


def _merge(lead: Lead, updates: Mapping[str, Any]) -> tuple[Lead, list[str]]:
    """Fill the lead's empty fields (and new attributes) from ``updates``, validated and
    normalised like input. Only the filled fields are converted (a whole-lead round trip costs
    ~10x more), on a copy: the incoming lead is never changed."""
    changes: dict[str, Any] = {}
    filled: list[str] = []
    for key, value in updates.items():
        if key == "attributes":
            if not isinstance(value, Mapping):
                raise TypeError("attributes must be a mapping")
            attrs = dict(lead.attributes)
            for name, v in value.items():
                if name not in attrs and v is not None:
                    attrs[name] = v
                    filled.append(f"attributes.{name}")
            if len(attrs) != len(lead.attributes):
                changes["attributes"] = attrs
        elif key not in _LEAD_FIELDS:
            raise ValueError(f"unknown lead field {key!r} (put free-form values under "
                             "attributes)")
        elif value is not None and getattr(lead, key) is None:
            changes[key] = value
            filled.append(key)
    if not changes:
        return lead, filled
    partial_input = dict(changes)
    if lead.country and ("state" in changes or "phone" in changes):
        partial_input["country"] = lead.country  # both are normalised against the country
    try:
        partial = msgspec.convert(partial_input, Lead, strict=False)
    except msgspec.ValidationError:
        partial = lead_from_mapping(partial_input)  # "1,200", "$5M", "yes"...
    merged = copy.copy(lead)
    for key in changes:
        setattr(merged, key, getattr(partial, key))
    if "state" in changes and lead.country is None:
        merged.country = partial.country
    return merged, filled
