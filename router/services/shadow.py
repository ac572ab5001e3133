"""Shadow mode (``LEADROUTER_SHADOW_RULES=DIR``): a candidate ruleset evaluated beside the live
one on every live lead, never acting on it.

:class:`ShadowService` loads the shadow directory (at start and whenever its files change: the
rules watcher polls it with the live directory) and takes every committed live lead from
:class:`~router.services.leads.LeadService` (``submit``: the lead's stored decision input and
the live plan, appended to a bounded queue — the only work on the request's path). A background
task (``run``) decides each one again with the shadow rules (:func:`decide` on the stored
input, as a replay does), counts evaluations, divergences from the live decision (status, and
the pool the rules route to) and errors in Prometheus, and records in Redis
(router/state/shadow.py) the shadow version's files and its period. A shadow ruleset that does
not load, or raises while evaluating, is counted and logged; live routing never waits for it
and never sees its errors.

Where each lead would have gone is not stored per lead: :func:`shadow_report` replays the shadow
period's leads against the recorded shadow files (router/services/replay.py), which decides on
the same stored inputs — the same report as ``leadrouter rules replay``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from router.engine.backend import Evaluator, compiled_evaluator
from router.engine.errors import RulesetError
from router.engine.functions import Function
from router.engine.loader import load_texts
from router.engine.ruleset import Ruleset
from router.intake.config import compile_intake
from router.observability import metrics
from router.plugins.host import PluginHost
from router.services.decide import DecisionPlan, decide
from router.services.decision_input import decode_input
from router.services.replay import ReplayService
from router.services.replay_model import ReplayQuery
from router.services.replay_report import Report, collect
from router.state.errors import StateError
from router.state.models import from_ms, to_ms
from router.state.shadow import (
    ShadowPeriod,
    record_shadow_rules,
    shadow_files,
    shadow_periods,
    touch_shadow,
)
from router.state.store import Store

__all__ = ["NoShadow", "ShadowService", "shadow_report"]

log = logging.getLogger("leadrouter.shadow")

_TOUCH_SECONDS = 1.0  # at most one period write per second and worker under load
_YIELD_EVERY = 64  # leads evaluated between yields to the event loop


class NoShadow(LookupError):
    """No shadow period is recorded (or not the version asked); the message says what to do."""


def _read_texts(directory: Path) -> dict[str, str]:
    """The rule files of ``directory`` by path (raises RulesetError when it cannot)."""
    from router.engine.errors import RuleError

    if not directory.is_dir():
        raise RulesetError([RuleError(file=str(directory), message="shadow rules directory "
                                      "not found", fix="set LEADROUTER_SHADOW_RULES to a "
                                      "directory holding scoring.yaml etc.")])
    out = {}
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        try:
            out[str(path)] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RulesetError([RuleError(file=str(path), message=f"cannot read file: {exc}",
                                          fix="check permissions and UTF-8")]) from None
    return out


class ShadowService:
    """One worker's shadow ruleset, its queue of live leads and their evaluation."""

    def __init__(self, directory: str | Path, *, plugins: PluginHost | None = None,
                 functions: Mapping[str, Function] | None = None,
                 clock: Callable[[], dt.datetime] | None = None, retention: int = 30 * 86400,
                 evaluator: Callable[[Ruleset], Evaluator] = compiled_evaluator,
                 max_queue: int = 10_000) -> None:
        self.directory = Path(directory)
        self.plugins = plugins
        self.functions = functions
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.retention = retention
        self.make_evaluator = evaluator
        self.max_queue = max_queue
        self.store: Store | None = None
        self.current: Ruleset | None = None
        self.files: dict[str, str] = {}  # the current version's, by plain file name
        self.errors: list[str] = []  # of the last load that failed
        self._evaluator: Evaluator | None = None
        self._fingerprint: tuple[Any, ...] | None = None
        self._pending: tuple[Any, ...] | None = None  # changed files, seen once (poll)
        self._queue: collections.deque[tuple[bytes, DecisionPlan]] = collections.deque()
        self._wake = asyncio.Event()
        self._recorded: str | None = None
        self._latest_ms = 0
        self._touched_ms = 0
        self._touched_at = 0.0
        self._logged: str | None = None  # the version whose evaluation error was logged

    # -- loading ---------------------------------------------------------------------------

    def fingerprint(self) -> tuple[Any, ...]:
        items = []
        if self.directory.is_dir():
            for path in sorted([*self.directory.glob("*.yaml"), *self.directory.glob("*.yml")]):
                with contextlib.suppress(OSError):
                    st = path.stat()
                    items.append((path.name, st.st_size, st.st_mtime_ns))
        return tuple(items)

    def load(self) -> bool:
        """Load the directory as it is now (the files read once: what is recorded is what was
        loaded). A failure keeps the previous shadow ruleset, if any, and is counted."""
        self._fingerprint = self.fingerprint()
        try:
            texts = _read_texts(self.directory)
            ruleset: Ruleset = load_texts(texts, source=str(self.directory),
                                          functions=self.functions, intake=compile_intake)
            evaluator = self.make_evaluator(ruleset)
        except RulesetError as exc:
            self.errors = [str(e) for e in exc.errors]
            metrics.SHADOW_ERRORS.labels("load").inc()
            log.warning("shadow rules not loaded from %s; live routing is not affected",
                        self.directory, extra={"errors": self.errors})
            return False
        except Exception as exc:  # an evaluator that refuses: never a reason to stop serving
            self.errors = [f"{self.directory}: {exc}"]
            metrics.SHADOW_ERRORS.labels("load").inc()
            log.warning("shadow rules not loaded from %s", self.directory, exc_info=True)
            return False
        self.errors = []
        if self.current is None or ruleset.version != self.current.version:
            log.info("shadow rules loaded from %s: version %s", self.directory,
                     ruleset.version[:12], extra={"version": ruleset.version})
        self.current, self._evaluator = ruleset, evaluator
        self.files = {Path(name).name: text for name, text in texts.items()}
        self._wake.set()  # record the version
        return True

    def poll(self) -> None:
        """Reload when the files changed and have stayed the same since the previous poll
        (called by the rules watcher at each poll). The one poll of settling is why: a file
        saved in place (truncate, then write) must not be loaded half-written — a shadow load
        error for a change nobody made (the live rules settle the same way: rules_watch.py)."""
        seen = self.fingerprint()
        if seen == self._fingerprint:
            self._pending = None
        elif seen == self._pending:
            self._pending = None
            self.load()
        else:
            self._pending = seen

    async def attach(self, store: Store) -> None:
        self.store = store
        await self._record()

    # -- the hot path ----------------------------------------------------------------------

    def submit(self, stored_input: bytes, plan: DecisionPlan) -> None:
        """A committed live lead (its stored decision input and the live plan): queued for the
        shadow rules. Never raises, never waits."""
        queue = self._queue
        if self.current is None:
            return
        if len(queue) >= self.max_queue:
            metrics.SHADOW_ERRORS.labels("dropped").inc()
            return
        queue.append((stored_input, plan))
        if not self._wake.is_set():
            self._wake.set()

    # -- the background task ---------------------------------------------------------------

    async def run(self) -> None:
        """Evaluate what was submitted, until cancelled."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                await self._record()
                await self.drain()
        finally:
            with contextlib.suppress(Exception):
                await self._touch(force=True)

    async def drain(self) -> int:
        """Evaluate every queued lead; returns how many were taken."""
        n = 0
        while self._queue:
            raw, live = self._queue.popleft()
            await self._evaluate(raw, live)
            n += 1
            if n % _YIELD_EVERY == 0:
                await self._touch()
                await asyncio.sleep(0)  # live requests first
        await self._touch()
        return n

    async def _evaluate(self, raw: bytes, live: DecisionPlan) -> None:
        ruleset, evaluator = self.current, self._evaluator
        if ruleset is None or evaluator is None:
            return
        try:
            inp = decode_input(raw)
            shadow = await decide(inp.lead, inp.snapshot, ruleset, evaluator=evaluator,
                                  plugins=self.plugins, notes=inp.notes, spam=inp.spam,
                                  explain=False)  # compared, never shown: no explanation
        except Exception:
            metrics.SHADOW_ERRORS.labels("evaluate").inc()
            if self._logged != ruleset.version:  # once per version: the metric counts them
                self._logged = ruleset.version
                log.warning("shadow rules %s raised while evaluating a lead; live routing is "
                            "not affected (leadrouter_shadow_errors_total counts each)",
                            ruleset.version[:12], exc_info=True)
            return
        metrics.SHADOW_EVALUATIONS.inc()
        if shadow.evaluation.status != live.evaluation.status:
            metrics.SHADOW_DIVERGENCES.labels("status").inc()
        if _pool(shadow) != _pool(live):
            metrics.SHADOW_DIVERGENCES.labels("pool").inc()
        self._latest_ms = max(self._latest_ms, to_ms(inp.snapshot.now))

    async def _record(self) -> None:
        """Record the current version (files, start) once per version."""
        ruleset, store = self.current, self.store
        if ruleset is None or store is None or self._recorded == ruleset.version:
            return
        try:
            await record_shadow_rules(store, ruleset.version, self.files,
                                      at_ms=to_ms(self.clock()), ttl_seconds=self.retention)
        except StateError:
            log.warning("shadow rules version not recorded (Redis); retrying with the next "
                        "lead", exc_info=True)
            return
        self._recorded = ruleset.version

    async def _touch(self, *, force: bool = False) -> None:
        store, version = self.store, self._recorded
        if store is None or version is None or self._latest_ms <= self._touched_ms:
            return
        now = time.monotonic()
        if not force and now - self._touched_at < _TOUCH_SECONDS and self._queue:
            return
        try:
            await touch_shadow(store, version, self._latest_ms)
        except StateError:
            return
        self._touched_ms, self._touched_at = self._latest_ms, now


def _pool(plan: DecisionPlan) -> str | None:
    """The pool the rules route a lead to (the first of its overflow chain)."""
    routing = plan.routing
    return routing.chain[0].id if routing.kind == "pool" and routing.chain else None


class ShadowWindow(msgspec.Struct, frozen=True, kw_only=True):
    version: str
    since: dt.datetime
    until: dt.datetime | None  # None: still shadowing


def window_of(periods: list[ShadowPeriod], version: str | None,
              active: str | None) -> ShadowWindow:
    """The period of ``version`` (default: the latest recorded): from its start to the next
    version's start, or to now while this worker still shadows it, or to the latest lead
    evaluated against it."""
    if not periods:
        raise NoShadow("no shadow period is recorded — set LEADROUTER_SHADOW_RULES=DIR on the "
                       "service, route some leads, then ask again")
    ordered = sorted(periods, key=lambda p: p.start_ms)
    index = len(ordered) - 1
    if version is not None:
        found = [i for i, p in enumerate(ordered) if p.version.startswith(version)]
        if len(version) < 7 or len(found) != 1:
            known = ", ".join(p.version[:12] for p in ordered)
            raise NoShadow(f"shadow version {version!r} is not recorded (or not unique) — "
                           f"give 7+ characters of one of: {known}")
        index = found[0]
    period = ordered[index]
    until: dt.datetime | None
    if index + 1 < len(ordered):
        until = from_ms(ordered[index + 1].start_ms - 1)
    elif period.version == active:
        until = None
    else:
        until = from_ms(period.last_ms if period.last_ms is not None else period.start_ms)
    return ShadowWindow(version=period.version, since=from_ms(period.start_ms), until=until)


async def shadow_report(store: Store, replay: ReplayService, *, version: str | None = None,
                        active: str | None = None,
                        functions: Mapping[str, Function] | None = None,
                        base: Ruleset | None = None, limit: int | None = None,
                        status: str | None = None, pool: str | None = None,
                        territory: str | None = None) -> Report:
    """The replay report of the shadow period of ``version`` (default the latest) against its
    recorded rules. ``active``: the version this process shadows now (its period is open).
    Raises :class:`NoShadow` when there is none."""
    window = window_of(await shadow_periods(store), version, active)
    files = await shadow_files(store, window.version)
    if files is None:
        raise NoShadow(f"the rule files of shadow version {window.version[:12]} expired with "
                       "its leads (they are kept for LEADROUTER_DECISION_RETENTION)")
    ruleset: Ruleset = load_texts(files, source=f"<shadow {window.version[:12]}>",
                                  functions=functions, intake=compile_intake)
    query = ReplayQuery(since=window.since, until=window.until, limit=limit, status=status,
                        pool=pool, territory=territory)
    return await collect(replay.run(ruleset, query), candidate=ruleset, base=base,
                         query=query)
