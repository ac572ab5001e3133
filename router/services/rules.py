"""The live ruleset of a service process, and safe reloads.

A reload is all or nothing: the new directory must load without a single error and, unless
disabled, every case in ``rules/tests`` must pass; otherwise the running ruleset keeps serving
and the attempt is recorded (``GET /v1/rules`` shows it). Requests take ``manager.current``
once when they start, and a Ruleset is immutable, so a request in flight finishes on the
ruleset it started with.

Every worker polls the rules directory and reloads itself; an admin reload also bumps a
generation counter in Redis (see :mod:`router.services.rules_watch`) so every worker re-reads
the directory at its next poll even when file timestamps did not change. All workers therefore
converge on the version of what is on disk.
"""

from __future__ import annotations

import datetime
import gc
import logging
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import msgspec

from router.engine import (
    COMPILED,
    ENTRY_POINT_GROUP,
    Backend,
    BackendRefused,
    Evaluator,
    Function,
    RuleError,
    Ruleset,
    RulesetError,
    compiled_evaluator,
    load_directory,
)
from router.engine.cases import load_cases, run_cases
from router.intake.config import compile_intake
from router.observability import metrics

__all__ = ["ReloadResult", "RulesManager", "find_backend"]

log = logging.getLogger("leadrouter.rules")

# The distribution to install for each engine this project ships outside the core, so that
# asking for one that is not installed says what to install (the core never imports them).
_PACKAGES = {"durable": "leadrouter-durable"}


def find_backend(name: str) -> Backend:
    """The evaluation backend called ``name``: the compiled engine, or the one an installed
    distribution registers under that name in the entry point group ``leadrouter.engines``.

    Raises :class:`BackendRefused` saying what to install when none does, or why it does not
    load.
    """
    if name == COMPILED:
        return compiled_evaluator
    found = entry_points(group=ENTRY_POINT_GROUP, name=name)
    if not found:
        package = _PACKAGES.get(name)
        install = (f"install the `{package}` package (pip install {package}; a checkout's "
                   "`uv sync` installs it)" if package else
                   "install the package that provides it")
        raise BackendRefused(
            f"no installed package provides the rule engine `{name}` (entry point `{name}` in "
            f"the group `{ENTRY_POINT_GROUP}`): {install}, or set LEADROUTER_ENGINE={COMPILED}")
    point = next(iter(found))
    try:
        backend: Backend = point.load()
    except Exception as exc:  # a broken install must not crash start-up without a reason
        raise BackendRefused(
            f"the rule engine `{name}` ({point.value}) does not load: {exc}; reinstall its "
            f"package, or set LEADROUTER_ENGINE={COMPILED}") from exc
    return backend


class ReloadResult(msgspec.Struct, kw_only=True):
    ok: bool
    changed: bool
    version: str
    at: datetime.datetime
    reason: str
    errors: list[str] = []
    attempted_version: str | None = None


class RulesManager:
    """Holds the current ruleset; loads, tests and swaps new ones."""

    def __init__(self, directory: str | Path, *, require_tests: bool = True,
                 functions: Mapping[str, Function] | None = None,
                 clock: Callable[[], datetime.datetime] | None = None,
                 engine: str = "compiled") -> None:
        self.directory = Path(directory)
        # "compiled" (default) or the name of an installed backend, e.g. "durable"
        # (durable-rules, docs/rules.md "Choosing an engine"); found when first needed
        self.engine = engine
        self._backend: Backend | None = None
        self._evaluators: dict[str, Evaluator] = {}
        self.require_tests = require_tests
        self.functions = functions
        self._clock = clock or (lambda: datetime.datetime.now(datetime.UTC))
        self._current: Ruleset | None = None
        self.loaded_at: datetime.datetime | None = None
        self.last_rejected: ReloadResult | None = None
        self.last_result: ReloadResult | None = None
        self._fingerprint: tuple[Any, ...] = ()
        self.listeners: list[Callable[[Ruleset], None]] = []

    @property
    def current(self) -> Ruleset:
        if self._current is None:
            raise RuntimeError("rules are not loaded yet")
        return self._current

    @property
    def loaded(self) -> bool:
        return self._current is not None

    def fingerprint(self) -> tuple[Any, ...]:
        """Cheap change detection: name, size and mtime of every rule and case file."""
        items = []
        for folder in (self.directory, self.directory / "tests"):
            if folder.is_dir():
                for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
                    try:
                        st = path.stat()
                    except OSError:
                        continue
                    items.append((str(path), st.st_size, st.st_mtime_ns))
        return tuple(items)

    def _attempt(self) -> tuple[Ruleset | None, list[RuleError], str | None]:
        # Each error names its own file and line: nothing here prefixes the directory again.
        try:
            ruleset: Ruleset = load_directory(self.directory, functions=self.functions,
                                              intake=compile_intake)
        except RulesetError as exc:
            return None, exc.errors, None
        if not self.require_tests:
            return ruleset, [], ruleset.version
        try:
            cases = load_cases(self.directory)
        except RulesetError as exc:
            return None, exc.errors, ruleset.version
        failures = [RuleError(file=r.case.file, line=r.case.line,
                              message=f"case {r.case.name!r}: {'; '.join(r.failures)}")
                    for r in run_cases(ruleset, cases) if not r.ok]
        if failures:
            return None, failures, ruleset.version
        return ruleset, [], ruleset.version

    def _prepare(self, ruleset: Ruleset) -> list[RuleError]:
        """Build the evaluator of the configured engine; its refusal rejects the ruleset."""
        if self.engine == COMPILED:
            # built once per ruleset, not per lead (evaluator() is on every lead's path)
            self._evaluators[ruleset.version] = compiled_evaluator(ruleset)
            return []
        try:
            if self._backend is None:
                self._backend = find_backend(self.engine)
            self._evaluators[ruleset.version] = self._backend(ruleset, functions=self.functions)
        except BackendRefused as exc:
            return [RuleError(file=str(self.directory), message=f"engine {self.engine}: {exc}")]
        return []

    def evaluator(self, ruleset: Ruleset) -> Evaluator:
        """The evaluator for ``ruleset`` on the configured engine (compiled unless set)."""
        found = self._evaluators.get(ruleset.version)
        return found if found is not None else compiled_evaluator(ruleset)

    def load_initial(self) -> Ruleset:
        """First load at start-up; raises :class:`RulesetError` (the service must not start)."""
        self._fingerprint = self.fingerprint()
        ruleset, errors, _ = self._attempt()
        if ruleset is not None:
            errors = self._prepare(ruleset)
        if ruleset is None or errors:
            raise RulesetError(errors)
        self._swap(ruleset)
        log.info("rules loaded from %s: version %s, engine %s", self.directory,
                 ruleset.version[:12], self.engine,
                 extra={"version": ruleset.version, "engine": self.engine})
        return ruleset

    def load_candidate(self) -> tuple[Ruleset | None, list[RuleError]]:
        """The directory as it is now, loaded and tested as a reload would, not swapped in
        (the reload gate replays it first: router/services/change_gate.py)."""
        ruleset, problems, _ = self._attempt()
        return ruleset, problems

    def refuse(self, candidate: Ruleset, errors: list[str], *, reason: str) -> ReloadResult:
        """Record a reload refused by the gate: the current ruleset keeps serving."""
        self._fingerprint = self.fingerprint()  # not retried at every poll
        result = ReloadResult(ok=False, changed=False, version=self.current.version,
                              at=self._clock(), reason=reason, errors=errors,
                              attempted_version=candidate.version)
        self.last_rejected = self.last_result = result
        log.warning("rules reload refused", extra={"reason": reason, "errors": errors})
        metrics.RULES_RELOADS.labels("rejected", reason.replace(" ", "_")).inc()
        return result

    def reload(self, *, reason: str = "requested", force: bool = False,
               candidate: Ruleset | None = None) -> ReloadResult:
        """Try the directory as it is now (or ``candidate``, loaded from it by
        :meth:`load_candidate`); swap only if it loads and its cases pass."""
        self._fingerprint = self.fingerprint()
        now = self._clock()
        current = self._current.version if self._current else ""
        ruleset, problems, attempted = (candidate, [], candidate.version) \
            if candidate is not None else self._attempt()
        if ruleset is not None:
            problems = self._prepare(ruleset)
            if problems:
                ruleset = None
        errors = [str(e) for e in problems]
        if ruleset is None:
            result = ReloadResult(ok=False, changed=False, version=current, at=now,
                                  reason=reason, errors=errors, attempted_version=attempted)
            self.last_rejected = result
            log.warning("rules reload rejected", extra={"reason": reason, "errors": errors})
        else:
            changed = ruleset.version != current
            if changed or force:
                self._swap(ruleset)
            result = ReloadResult(ok=True, changed=changed, version=ruleset.version, at=now,
                                  reason=reason, attempted_version=ruleset.version)
            if changed:
                log.info("rules reloaded", extra={"version": ruleset.version, "reason": reason})
        self.last_result = result
        # Trigger names are the callers' constants ("admin", "file change", "generation").
        metrics.RULES_RELOADS.labels("ok" if result.ok else "rejected",
                                     reason.replace(" ", "_")).inc()
        return result

    def changed_on_disk(self) -> bool:
        return self.fingerprint() != self._fingerprint

    def _swap(self, ruleset: Ruleset) -> None:
        previous = self._current
        self._current = ruleset
        # keep the evaluator of the ruleset in-flight requests may still use, drop older ones
        keep = {ruleset.version} | ({previous.version} if previous else set())
        self._evaluators = {v: e for v, e in self._evaluators.items() if v in keep}
        self.loaded_at = self._clock()
        metrics.declare_sla_policies(ruleset.sla_policies)
        for listener in self.listeners:
            listener(ruleset)
        # Compiled rules are long-lived: move them (and everything else alive now) out of the
        # cyclic GC's reach so collections stay short (see docs/architecture.md, performance).
        gc.collect()
        gc.freeze()
