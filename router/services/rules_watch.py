"""Keeping every worker on the same rules: the file watcher and the shared generation counter.

An admin reload happens in one worker; it bumps a counter in Redis (``announce``). Every worker
polls the rules directory and that counter (``run``, one GET per poll interval) and reloads
when either moved, so all converge on what is on disk even if file timestamps did not change
(e.g. a ConfigMap swap that preserves mtimes).

The audit log gets one entry per reload, not one per worker: an admin reload is recorded by the
worker that served the request (with the verified actor); the others' "generation" reloads are
not recorded; a file change, which every worker's watcher reloads on its own, is recorded by
the one worker that wins its claim (a key named by the files' fingerprint, router/state/audit.py).

A file change is reloaded only once the directory has settled (``_settle``): many editors, ``cp``
and slow network volumes write a file in place (truncate, then write), and a poll between the
two would read it half-written — a rejected reload, audited, logged and counted, for a change
nobody made. A generation bump is not delayed: it follows an explicit admin reload, made from
the files as they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from router.services.change_gate import ChangeLimit, GateResult
from router.services.rules import ReloadResult, RulesManager
from router.state.audit import Actor, Recorder
from router.state.errors import StateError, StateUnavailable
from router.state.rules_sync import bump_rules_generation, rules_generation
from router.state.store import Store

__all__ = ["RulesWatcher"]

log = logging.getLogger("leadrouter.rules")

# (limits, trigger) → the reload's result and the gate's (change_gate.gated_reload, bound by
# the app to the replay service).
Gated = Callable[[list[ChangeLimit], str], Awaitable[tuple[ReloadResult, GateResult | None]]]

WATCHER = Actor("rules-watcher")
_MAX_ERRORS, _MAX_TEXT, _MAX_FILES = 5, 300, 50  # what an audit entry keeps of a reload
# Settle intervals a changing directory is waited for before it is reloaded anyway: a file
# touched more often than that (a sync loop, a generator) must still be evaluated, not wait.
_SETTLE_WAITS = 8


def rule_files(directory: Path) -> dict[str, str]:
    """Each rule and case file (relative name) → the SHA-256 of its contents."""
    out: dict[str, str] = {}
    for folder in (directory, directory / "tests"):
        if folder.is_dir():
            for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
                with contextlib.suppress(OSError):
                    out[str(path.relative_to(directory))] = hashlib.sha256(
                        path.read_bytes()).hexdigest()
    return out


class RulesWatcher:
    def __init__(self, rules: RulesManager, *, poll_seconds: float,
                 settle_seconds: float = 0.25) -> None:
        self.rules = rules
        self.poll_seconds = poll_seconds
        # LEADROUTER_RELOAD_SETTLE_SECONDS, at most the poll interval: a watcher set to notice
        # changes quickly is not made slow by its settling (poll 0: no polling, no settling).
        self.settle_seconds = max(0.0, min(settle_seconds, poll_seconds))
        # How the settle step waits (a test replaces it to write during the wait).
        self.sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
        self.store: Store | None = None
        self.generation: int | None = None
        # Polled with the rules directory (shadow mode's directory: ShadowService.poll).
        self.followers: list[Callable[[], object]] = []
        # The reload gate (router/services/change_gate.py): the default limits
        # (LEADROUTER_RELOAD_MAX_CHANGE; none: off) and, once the store is connected, the
        # gated reload the app gives (it replays: it needs Redis).
        self.limits: list[ChangeLimit] = []
        self.gated: Gated | None = None
        # The audit log's record (router/services/audit.py), once the store is connected; the
        # files as the serving rules were loaded from, to name what a reload changed.
        self.record: Recorder | None = None
        self._files = rule_files(rules.directory)

    async def reload(self, reason: str, limits: list[ChangeLimit] | None = None, *,
                     by: Actor | None = None) -> tuple[ReloadResult, GateResult | None]:
        """Reload now, through the gate when there are limits (``limits``, else the default
        ones), and audit it (``by``: who asked; None: this watcher). Raises StateError when
        the gate cannot replay (nothing changed)."""
        limits = self.limits if limits is None else limits
        # what this reload reads, taken before it: the audit entry's files and claim
        seen = (rule_files(self.rules.directory), self.rules.fingerprint())
        if not limits:
            result, gate = self.rules.reload(reason=reason), None
        elif self.gated is None:
            raise StateUnavailable("the state store is not connected yet (the reload gate "
                                   "replays stored leads)")
        else:
            result, gate = await self.gated(limits, reason)
        await self._audit(result, reason, by, seen)
        return result, gate

    async def _audit(self, result: ReloadResult, reason: str, by: Actor | None,
                     seen: tuple[dict[str, str], tuple[object, ...]]) -> None:
        """One audit entry for this reload, unless another worker records it (see above)."""
        files, fingerprint = seen
        changed = sorted(n for n in files.keys() | self._files.keys()
                         if files.get(n) != self._files.get(n))
        if result.ok:
            self._files = files
        if self.record is None or reason == "generation" or (
                by is None and result.ok and not result.changed):  # a file touched, not changed
            return
        details: dict[str, object] = {"version": result.version, "trigger": reason,
                                      "files": changed[:_MAX_FILES]}
        if result.ok:
            details["changed"] = result.changed
        else:
            details.update(attempted_version=result.attempted_version,
                           errors=[e[:_MAX_TEXT] for e in result.errors[:_MAX_ERRORS]],
                           error_count=len(result.errors))
        claim = None if by is not None else hashlib.sha256(repr(
            (fingerprint, result.ok, result.attempted_version)).encode()).hexdigest()[:32]
        await self.record(by or WATCHER, "rules.reload.accepted" if result.ok
                          else "rules.reload.rejected", "rules", details, claim=claim)

    async def attach(self, store: Store) -> None:
        """Start from the counter as it is now (if Redis answers: else the first poll does)."""
        self.store = store
        with contextlib.suppress(StateError):
            self.generation = await rules_generation(store)

    async def announce(self) -> None:
        """Tell the other workers to re-read the rules directory (after an admin reload)."""
        if self.store is None:  # only before the lifespan attached the store
            log.warning("rules reloaded in this worker only: the store is not connected yet; "
                        "the others follow file changes at their next poll")
            return
        try:
            self.generation = await bump_rules_generation(self.store)
        except StateError:
            log.warning("rules reloaded in this worker only: Redis did not take the "
                        "generation bump; the others follow file changes at their next poll",
                        exc_info=True)

    async def poll(self) -> None:
        """One check: reload if the files changed or another worker announced a reload."""
        generation = self.generation
        if self.store is not None:
            with contextlib.suppress(StateError):
                generation = await rules_generation(self.store)
        bumped = generation is not None and generation != self.generation
        if bumped or self.rules.changed_on_disk():
            self.generation = generation
            if not bumped:  # an admin reload elsewhere already read these files: no wait
                await self._settle()
            with contextlib.suppress(StateError):  # the gate could not replay: next poll
                await self.reload("generation" if bumped else "file change")
        for follow in self.followers:
            follow()

    async def _settle(self) -> None:
        """Wait until two looks at the files, ``settle_seconds`` apart, agree (name, size and
        mtime of each), so a file being written in place is read once it is whole; after
        ``_SETTLE_WAITS`` waits without two agreeing, return anyway (reload what is there)."""
        if self.settle_seconds <= 0:
            return
        seen = self.rules.fingerprint()
        for _ in range(_SETTLE_WAITS):
            await self.sleep(self.settle_seconds)
            now = self.rules.fingerprint()
            if now == seen:
                return
            seen = now
        log.info("rules directory %s still changing after %d waits of %ss: reloading it as "
                 "it is", self.rules.directory, _SETTLE_WAITS, self.settle_seconds)

    async def run(self) -> None:
        """Poll every ``poll_seconds`` until cancelled (0: never)."""
        while self.poll_seconds > 0:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.poll()
            except Exception:
                # One bad poll (a follower's bug, a file read racing an editor) must not end
                # the loop: this worker would silently never reload again.
                log.exception("rules watcher: unexpected error; polling again in %ss",
                              self.poll_seconds)
