"""Reps' live state, pool statistics and account ownership: the directory side of
:class:`router.state.store.Store` (a mixin, so callers keep one object; the hot path is in
``store.py``). Each call is one round trip."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import msgspec

from router.engine.availability import PoolPlan
from router.state._commit_args import CommitArgs
from router.state.codec import PoolStatsArg, pool_stats_from_reply, text
from router.state.errors import check_reply, translate_errors
from router.state.keys import Keys
from router.state.models import PoolStats, RepState, RepStatus, from_ms, to_ms
from router.state.scripts import Script, pack_keys
from router.state.wire import Wire

__all__ = ["Directory"]

_REP_STATUSES = ("available", "away", "out_of_office")


class Directory:
    """Mixed into ``Store``, which provides these attributes."""

    wire: Wire
    keys: Keys
    round_trips: int
    retention_ms: int
    _scripts: dict[str, Script]
    _encoder: msgspec.json.Encoder
    _count: Callable[[int], None]
    _commit_args: CommitArgs

    async def put_rep(self, rep: str, status: RepStatus, until: dt.datetime | None = None,
                      *, now: dt.datetime | None = None) -> RepState:
        """Set a rep's live state. ``until`` ends an away / out-of-office automatically."""
        if status not in _REP_STATUSES:
            raise ValueError(f"unknown rep status {status!r}; use one of {_REP_STATUSES}")
        at = now or dt.datetime.now(dt.UTC)
        mapping: dict[str, str | int] = {"status": status, "at": to_ms(at)}
        if until is not None and status != "available":
            mapping["until"] = to_ms(until)
        key = self.keys.rep(rep)
        with translate_errors("put_rep"):
            self.round_trips += 1
            # MULTI/EXEC in one write: readers never see the state half replaced.
            replies = await self.wire.batch(
                [("MULTI",), ("DEL", key),
                 ("HSET", key, *(x for kv in mapping.items() for x in kv)), ("EXEC",)])
        for reply in replies:
            check_reply("put_rep", reply)
        return RepState(rep=rep, status=status, until=until if "until" in mapping else None,
                        updated_at=from_ms(to_ms(at)))

    async def get_rep(self, rep: str) -> RepState:
        """The rep's live state; a rep never set is available."""
        with translate_errors("get_rep"):
            self.round_trips += 1
            status, until, at = await self.wire.call(
                "HMGET", self.keys.rep(rep), "status", "until", "at")
        return RepState(rep=rep, status=(text(status) or "available"),  # type: ignore[arg-type]
                        until=from_ms(until) if until else None,
                        updated_at=from_ms(at) if at else None)

    async def pool_stats(self, pool: PoolPlan, now: dt.datetime) -> PoolStats:
        """The pool's members as the commit would judge them at ``now`` (one round trip).
        ``pool`` comes from ``router.engine.availability.pool_plan`` for the same ``now``."""
        arg = PoolStatsArg(pool=pool, now=to_ms(now), ret=self.retention_ms)
        with translate_errors("pool_stats"):
            raw = await self._scripts["pool_stats"](
                self.wire, [self._commit_args.pool_keys(pool)], [self._encoder.encode(arg)],
                self._count)
        return pool_stats_from_reply(pool, raw)

    async def put_account(self, domain: str, owner: str, *,
                          now: dt.datetime | None = None) -> None:
        await self._account("put_account", domain, owner, now)

    async def _account(self, what: str, domain: str, owner: str,
                       now: dt.datetime | None) -> int:
        """lua/accounts.lua for one account: its hash and the accounts index (lists.py)."""
        at = str(to_ms(now or dt.datetime.now(dt.UTC)))
        name = domain.strip().lower().rstrip(".")  # as Keys.account spells it
        keys = pack_keys((self.keys.accounts_index, self.keys.account(name)))
        with translate_errors(what):
            return int(await self._scripts["accounts"](self.wire, [keys], [at, name, owner],
                                                       self._count))

    async def get_account(self, domain: str) -> str | None:
        """The owner rep of ``domain``, or None."""
        with translate_errors("get_account"):
            self.round_trips += 1
            return text(await self.wire.call(
                "HGET", self.keys.account(domain), "owner"))

    async def delete_account(self, domain: str) -> bool:
        """True if there was an account to delete."""
        return bool(await self._account("delete_account", domain, "", None))
