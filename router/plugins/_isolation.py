"""How the plugin host keeps one plugin from failing a lead or start-up.

At start-up a plugin problem stops the service in strict mode and is logged otherwise. Per
call, each implementation is called by the host itself, one by one, by keyword, through its
breaker and within its time budget; a call that raises or runs past its budget is skipped and
recorded (an explanation step, the plugin's error counter, its breaker). See
router/plugins/host.py for the whole policy.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

from leadrouter_sdk import Contribution, Event, PermanentDeliveryError, RouteOverride, Step

from router.plugins._hooks import (
    DeliveryFailed,
    DeliveryRejected,
    Impl,
    PluginError,
    PluginInfo,
    short,
)

__all__ = ["STAGE", "Isolation"]

log = logging.getLogger("leadrouter.plugins")

STAGE = "plugins"
_PLAIN = frozenset({dict, list, tuple, Contribution, RouteOverride})


class Isolation:
    """The failure handling of :class:`router.plugins.host.PluginHost`."""

    strict: bool
    # (plugin, hook, outcome) -> count; outcome: ok | raised | timeout | invalid | skipped
    counts: dict[tuple[str, str, str], int]

    def _problem(self, info: PluginInfo, message: str) -> None:
        """A plugin problem at start-up: fatal in strict mode, else logged."""
        if self.strict:
            raise PluginError(message + " (strict mode: LEADROUTER_PLUGINS_STRICT)")
        log.error("%s; continuing without it", message)

    def _count(self, impl: Impl, outcome: str) -> None:
        key = (impl.plugin, impl.hook, outcome)
        self.counts[key] = self.counts.get(key, 0) + 1

    def _ok(self, impl: Impl) -> None:
        impl.breaker.success()
        self._count(impl, "ok")

    def _fail(self, impl: Impl, outcome: str, detail: str, notes: list[Step] | None,
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
            notes.append(Step(stage=STAGE, outcome="skipped", rule=impl.plugin, detail=text))

    def _skip(self, impl: Impl, notes: list[Step] | None, what: str) -> None:
        self._count(impl, "skipped")
        if notes is not None:
            notes.append(Step(stage=STAGE, outcome="skipped", rule=impl.plugin, detail=(
                f"{impl.hook} is switched off after repeated failures (retried in "
                f"{impl.breaker.remaining():.0f} s); {what}")))

    async def _call_all(self, impls: Sequence[Impl], kwargs: Mapping[str, Any],
                        budget: float, notes: list[Step] | None,
                        what: str) -> list[tuple[Impl, Any]]:
        """Call every implementation; the (impl, result) of those that returned in time.
        Failures are recorded here; the caller validates results and calls _ok / _fail."""
        done, pending = self._call_sync(impls, kwargs, budget, notes, what)
        if pending:
            await self._await_all(impls, done, pending, budget, notes, what)
        return done

    def _call_sync(self, impls: Sequence[Impl], kwargs: Mapping[str, Any], budget: float,
                   notes: list[Step] | None, what: str
                   ) -> tuple[list[tuple[Impl, Any]], list[tuple[Impl, Awaitable[Any], float]]]:
        """Call every implementation; sync results are done, awaitables pending."""
        done: list[tuple[Impl, Any]] = []
        pending: list[tuple[Impl, Awaitable[Any], float]] = []
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
                self._fail(impl, "raised", f"raised {short(exc)}", notes, what)
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

    async def _await_all(self, impls: Sequence[Impl], done: list[tuple[Impl, Any]],
                         pending: list[tuple[Impl, Awaitable[Any], float]], budget: float,
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

    async def _await(self, impl: Impl, aw: Awaitable[Any], start: float,
                     budget: float) -> tuple[bool, Any]:
        try:
            async with asyncio.timeout(max(0.0, budget - (time.perf_counter() - start))):
                value = await aw
        except TimeoutError:
            impl.series.duration.observe(time.perf_counter() - start)
            return False, ("timeout", f"ran past its {budget * 1000:.0f} ms budget")
        except Exception as exc:
            impl.series.duration.observe(time.perf_counter() - start)
            return False, ("raised", f"raised {short(exc)}")
        impl.series.duration.observe(time.perf_counter() - start)
        return True, value

    async def _call_sink(self, impl: Impl, event: Event, budget: float) -> None:
        """One ``on_event`` call through the breaker and within ``budget``. Returns when the
        sink took the event; raises :class:`DeliveryRejected` when it raised
        ``PermanentDeliveryError`` (counted ``rejected``, the breaker untouched) and
        :class:`DeliveryFailed` for anything else (a failure, like any hook's)."""
        what = "it will be delivered again"
        if not impl.breaker.allow():
            notes: list[Step] = []
            self._skip(impl, notes, what)
            raise DeliveryFailed(notes[0].detail)
        impl.series.calls.inc()
        start = time.perf_counter()
        failed: tuple[str, str] | None = None
        try:
            value = impl.fn(**({"event": event} if impl.names else {}))
            if value is not None and inspect.isawaitable(value):
                limit = asyncio.timeout(max(0.0, budget - (time.perf_counter() - start)))
                try:
                    async with limit:
                        await value
                except TimeoutError:
                    if not limit.expired():
                        raise
                    failed = ("timeout", f"ran past its {budget * 1000:.0f} ms budget")
            elif (elapsed := time.perf_counter() - start) > budget:
                failed = ("timeout", f"took {elapsed * 1000:.0f} ms, past its "
                          f"{budget * 1000:.0f} ms budget")
        except PermanentDeliveryError as exc:
            impl.series.duration.observe(time.perf_counter() - start)
            self._count(impl, "rejected")
            impl.breaker.neutral()
            raise DeliveryRejected(str(exc) or type(exc).__name__) from exc
        except Exception as exc:
            failed = ("raised", f"raised {short(exc)}")
        impl.series.duration.observe(time.perf_counter() - start)
        if failed is not None:
            notes = []
            self._fail(impl, failed[0], failed[1], notes, what)
            raise DeliveryFailed(notes[0].detail)
        self._ok(impl)
