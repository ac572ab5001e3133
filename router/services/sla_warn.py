"""``sla.warning`` events: a warning time before a lead's SLA deadline — the policy's
``warn_before`` (rules/sla.yaml), else ``LEADROUTER_SLA_WARN_BEFORE``.

Started beside the breach worker (router/services/sla.py) in every process. Each tick looks,
for each distinct warning time (one group: the policies it is for), at the SLA schedule
between the group's cursor and ``now + warn_before``: every lead of the group due in that window
has reached its warning time, and ``lua/sla_warn.lua`` writes its ``sla.warning`` event to the
outbox at most once per lead and deadline (the marker is on the lead, set in the same script),
so any number of workers may look at the same leads. The cursor lives in the process: it
starts at ``now`` (a lead due before now is being breached, not warned) and moves to the end
of the window it has handled, so each tick reads only the leads newly inside the window.

A deadline set less than ``warn_before`` ahead (a 2-minute SLA with a 3-minute warning) gets
no warning: the assignment event itself is the alert. Each lead is looked at once per group
(the script answers ``other`` for another group's policy): few distinct warning times keep it
cheap. The breach logic is not touched.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from router.services.rules import RulesManager
from router.settings import Settings
from router.state.errors import StateError
from router.state.models import to_ms
from router.state.sla_warn import SlaWarnings, WarnGroup
from router.state.store import Store

__all__ = ["SlaWarner"]

log = logging.getLogger("leadrouter.sla")

_MAX_ROUNDS = 50  # batches per tick (many leads due in the same millisecond)


class SlaWarner:
    """The warning worker of one process."""

    def __init__(self, *, store: Store, rules: RulesManager, settings: Settings,
                 clock: Callable[[], dt.datetime]) -> None:
        self.state = SlaWarnings(store)
        self.rules = rules
        self.default_ms = settings.sla_warn_before * 1000
        self.poll = settings.sla_poll_seconds
        self.batch = settings.sla_batch
        self.now = clock
        self.cursors: dict[WarnGroup, int] = {}
        self.warned = 0

    @property
    def enabled(self) -> bool:
        """Runs in this process (rules reloaded later may add warning times)."""
        return self.poll > 0

    def groups(self) -> list[WarnGroup]:
        """The warning times now: one per distinct policy ``warn_before``, and the service's
        default for the policies without one."""
        own: dict[int, list[str]] = {}
        named: list[str] = []
        for policy_id, policy in sorted(self.rules.current.sla_policies.items()):
            if policy.warn_before is not None:
                named.append(policy_id)
                if policy.warn_before > 0:
                    own.setdefault(policy.warn_before * 1000, []).append(policy_id)
        out = [WarnGroup(ms, "in", tuple(ids)) for ms, ids in sorted(own.items())]
        if self.default_ms > 0:
            out.append(WarnGroup(self.default_ms, "out" if named else "all", tuple(named)))
        return out

    async def tick(self) -> int:
        """Warn about every lead whose warning time has come since the last tick; returns how
        many warnings this process wrote."""
        now = self.now()
        groups = self.groups()
        written = 0
        for group in groups:
            written += await self._tick(group, now)
        for stale in set(self.cursors) - set(groups):  # a reload changed the warning times
            del self.cursors[stale]
        self.warned += written
        if written:
            log.info("SLA warnings: %d lead(s) warned", written)
        return written

    async def _tick(self, group: WarnGroup, now: dt.datetime) -> int:
        now_ms = to_ms(now)
        low = max(self.cursors.get(group, now_ms), now_ms)
        high = now_ms + group.before_ms
        written, offset = 0, 0
        for _ in range(_MAX_ROUNDS):
            entries = await self.state.due_between(low, high, offset=offset, count=self.batch)
            outcomes = await self.state.warn_all(entries, now, group)
            written += outcomes.count("warned")
            if len(entries) < self.batch:
                self.cursors[group] = high
                break
            # A full batch: go on from its last score (entries at that score come again and
            # are answered 'done'); the offset only skips them when the whole batch tied.
            last = entries[-1][1]
            offset = offset + len(entries) if last == low else 0
            low = last
            self.cursors[group] = low
        return written

    async def run(self) -> None:
        """Poll forever (cancel the task to stop); Redis outages are logged once."""
        failing = False
        while True:
            try:
                await self.tick()
                if failing:
                    log.info("SLA warnings: state store reachable again")
                failing = False
            except StateError as exc:
                if not failing:
                    log.warning("SLA warnings: %s; retrying every %.1fs", exc, self.poll)
                failing = True
            except Exception:
                log.exception("SLA warnings: unexpected error; retrying")
            await asyncio.sleep(self.poll)
