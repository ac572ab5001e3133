"""Keeping every worker on the same rules: the file watcher and the shared generation counter.

An admin reload happens in one worker; it bumps a counter in Redis (``announce``). Every worker
polls the rules directory and that counter (``run``, one GET per poll interval) and reloads
when either moved, so all converge on what is on disk even if file timestamps did not change
(e.g. a ConfigMap swap that preserves mtimes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from router.services.change_gate import ChangeLimit, GateResult
from router.services.rules import ReloadResult, RulesManager
from router.state.errors import StateError, StateUnavailable
from router.state.rules_sync import bump_rules_generation, rules_generation
from router.state.store import Store

__all__ = ["RulesWatcher"]

log = logging.getLogger("leadrouter.rules")

# (limits, trigger) → the reload's result and the gate's (change_gate.gated_reload, bound by
# the app to the replay service).
Gated = Callable[[list[ChangeLimit], str], Awaitable[tuple[ReloadResult, GateResult | None]]]


class RulesWatcher:
    def __init__(self, rules: RulesManager, *, poll_seconds: float) -> None:
        self.rules = rules
        self.poll_seconds = poll_seconds
        self.store: Store | None = None
        self.generation: int | None = None
        # Polled with the rules directory (shadow mode's directory: ShadowService.poll).
        self.followers: list[Callable[[], object]] = []
        # The reload gate (router/services/change_gate.py): the default limits
        # (LEADROUTER_RELOAD_MAX_CHANGE; none: off) and, once the store is connected, the
        # gated reload the app gives (it replays: it needs Redis).
        self.limits: list[ChangeLimit] = []
        self.gated: Gated | None = None

    async def reload(self, reason: str, limits: list[ChangeLimit] | None = None
                     ) -> tuple[ReloadResult, GateResult | None]:
        """Reload now, through the gate when there are limits (``limits``, else the default
        ones). Raises StateError when the gate cannot replay (nothing changed)."""
        limits = self.limits if limits is None else limits
        if not limits:
            return self.rules.reload(reason=reason), None
        if self.gated is None:
            raise StateUnavailable("the state store is not connected yet (the reload gate "
                                   "replays stored leads)")
        return await self.gated(limits, reason)

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
        if self.rules.changed_on_disk() or bumped:
            self.generation = generation
            with contextlib.suppress(StateError):  # the gate could not replay: next poll
                await self.reload("generation" if bumped else "file change")
        for follow in self.followers:
            follow()

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
