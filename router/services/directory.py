"""The directory: reps' live state, pool statistics and account ownership.

Who the reps and pools are comes from the rules (rules/reps.yaml); what changes at run time —
a rep's availability, who owns an account — is in Redis (router/state/directory.py). This
service joins the two, so the API asks one place and never the store.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from router.engine.availability import pool_plan
from router.services.clock import Clock
from router.services.rules import RulesManager
from router.state.audit import Actor, Recorder
from router.state.models import PoolStats, RepState, RepStatus
from router.state.store import Store

__all__ = ["DirectoryService", "PoolStats", "RepState", "RepStatus", "RepView", "UnknownPool",
           "UnknownRep"]


class UnknownRep(LookupError):
    """A rep id not in the current rules; the message lists (some of) those that are."""

    def __init__(self, rep: str, known: list[str]) -> None:
        super().__init__(f"no rep {rep!r} in rules/reps.yaml (known: {', '.join(known)})")


class UnknownPool(LookupError):
    """A pool id not in the current rules; the message lists those that are."""

    def __init__(self, pool: str, known: list[str]) -> None:
        super().__init__(f"no pool {pool!r} (known: {', '.join(known)}) — use one of those, "
                         "or add it to `pools:` in the rules")


class RepView(msgspec.Struct, kw_only=True):
    """A rep's configuration (from the rules) and live availability (from Redis)."""

    id: str
    name: str | None
    timezone: str
    weight: int
    daily_cap: int | None
    live: RepState
    available_now: bool


class DirectoryService:
    def __init__(self, *, store: Store, rules: RulesManager, clock: Clock,
                 record: Recorder | None = None) -> None:
        self.store = store
        self.rules = rules
        self.clock = clock
        self.record = record  # the audit log (router/services/audit.py); None: not recorded

    def check_rep(self, rep: str) -> None:
        """UnknownRep unless ``rep`` is in the current rules."""
        reps = self.rules.current.reps
        if rep not in reps:
            raise UnknownRep(rep, sorted(reps)[:20])

    async def rep(self, rep: str) -> RepView:
        self.check_rep(rep)
        spec = self.rules.current.reps[rep]
        state = await self.store.get_rep(rep)
        return RepView(id=rep, name=spec.name, timezone=spec.timezone, weight=spec.weight,
                       daily_cap=spec.daily_cap, live=state,
                       available_now=state.available_at(self.clock()))

    async def set_rep(self, rep: str, status: RepStatus, until: dt.datetime | None, *,
                      by: Actor) -> RepState:
        """A rep's new availability; ``until`` ends an absence by itself. Audited (``by``)."""
        self.check_rep(rep)
        before = await self.store.get_rep(rep) if self.record else None
        state = await self.store.put_rep(rep, status, until)
        if self.record and before is not None:
            was = "available" if before.available_at(self.clock()) else before.status
            await self.record(by, "rep.status", f"rep:{rep}", {
                "rep": rep, "from": was, "to": status,
                "until": until.isoformat() if until else None})
        return state

    async def pool(self, pool_id: str) -> PoolStats:
        """Members, who is eligible right now and why not, assignments today, caps used."""
        ruleset = self.rules.current
        pool = ruleset.pools.get(pool_id)
        if pool is None:
            raise UnknownPool(pool_id, sorted(ruleset.pools))
        now = self.clock()
        return await self.store.pool_stats(pool_plan(pool, ruleset.reps, now), now=now)

    async def set_account_owner(self, domain: str, owner: str, *, by: Actor) -> None:
        """``owner`` owns every lead from ``domain``; UnknownRep if not a rep in the rules.
        Audited (``by``)."""
        self.check_rep(owner)
        before = await self.store.get_account(domain) if self.record else None
        await self.store.put_account(domain, owner)
        if self.record:
            await self.record(by, "account.owner", f"account:{domain}",
                              {"domain": domain, "from": before, "to": owner})

    async def account_owner(self, domain: str) -> str | None:
        return await self.store.get_account(domain)

    async def delete_account(self, domain: str, *, by: Actor) -> bool:
        """True if there was an owner to forget. Audited (``by``) when there was."""
        before = await self.store.get_account(domain) if self.record else None
        deleted = await self.store.delete_account(domain)
        if self.record and deleted:
            await self.record(by, "account.owner", f"account:{domain}",
                              {"domain": domain, "from": before, "to": None})
        return deleted
