"""Funnel state: recording outcomes (``lua/outcome.lua``) and reading the per-day aggregates.

Every lead is counted once per dimension (:data:`FUNNEL_DIMS`) in the hashes of its routing
UTC day (layout in ``lua/_funnel.lua``): routed at commit (``funnel_commit``, one hash for all
dimensions, ``funnel:routed:<YYYY-MM-DD>``), then in ``funnel:<dim>:<YYYY-MM-DD>`` each stage
when it is first reached (``outcome.lua`` for outcomes, ``owner.lua`` for accept /
contacted), with the times between stages as exact counts and sums
plus a log histogram (8 buckets per doubling: a quantile read from it is within 4.5% of the
exact one), kept with the exact sum as one blob per group and stage pair, so a report adds a
day's times as one big integer. A report over ``days`` reads ``days`` hashes of one dimension
(one pipelined round trip), whatever the number of leads. The aggregates hold counts per
group, never a lead or a person; they expire with the day's leads (the day's end + retention
+ 2 days).

The lead's own outcome fields are the storage contract of router/state/outcomes.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec

from router.engine.funnel import FunnelSpec
from router.state.errors import check_reply, translate_errors
from router.state.keys import FUNNEL_DIMS, Keys
from router.state.models import to_ms
from router.state.outcomes import LeadOutcome, outcome_fields, outcome_of
from router.state.scripts import PackedKeys, pack_keys
from router.state.store import Store

__all__ = ["BUCKETS_PER_DOUBLING", "FUNNEL_DIMS", "UNITS", "FunnelArg", "FunnelState",
           "OutcomeResult", "bucket_mid_ms", "day_keys", "day_of", "funnel_arg", "units_of"]

BUCKETS_PER_DOUBLING = 8
UNITS = 10_000  # amounts are summed in 1/10000 of the currency (exact integers)
_DAY_MS = 86_400_000
_encode = msgspec.json.Encoder().encode


class FunnelArg(msgspec.Struct, frozen=True, kw_only=True):
    """The funnel as the scripts read it (``a.fs``)."""

    stages: tuple[str, ...]
    chain: tuple[str, ...]
    won: str
    pairs: tuple[tuple[str, str], ...]


def funnel_arg(spec: FunnelSpec) -> FunnelArg:
    return FunnelArg(stages=spec.stages, chain=spec.chain, won=spec.won or "",
                     pairs=spec.pairs())


def day_of(ms: int) -> str:
    """The UTC day (YYYY-MM-DD) of an epoch-ms time."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).date().isoformat()


def _day_start(ms: int) -> int:
    return ms - ms % _DAY_MS


def day_keys(keys: Keys, day: str) -> PackedKeys:
    """The day's hashes, one per dimension in :data:`FUNNEL_DIMS` order."""
    return pack_keys(keys.funnel_day(day))


def expiry_ms(day_start: int, retention_ms: int) -> int:
    """When a day's aggregates expire: the day's end + retention + 2 days."""
    return day_start + _DAY_MS + retention_ms + 2 * _DAY_MS


def units_of(amount: Decimal) -> int:
    """An amount in 1/10000 of its currency (the aggregates' exact integer)."""
    return int((amount * UNITS).to_integral_value())


def bucket_mid_ms(k: int) -> float:
    """The geometric middle of histogram bucket ``k`` in ms (bucket 0: below 1 s → 500 ms)."""
    if k <= 0:
        return 500.0
    return 1000.0 * 2 ** ((k - 0.5) / BUCKETS_PER_DOUBLING)


class _OutcomeArg(msgspec.Struct, kw_only=True):
    id: str
    now: int
    stage: str
    at: int
    amount: str
    units: int
    currency: str
    reason: str
    oid: str
    day: int
    fk: int
    fexp: int
    fs: FunnelArg
    hmax: int
    read: tuple[str, ...]  # the lead's fields to answer (router/state/outcomes.py)


class OutcomeResult(msgspec.Struct, frozen=True, kw_only=True):
    """``recorded`` (new stage), ``repeat`` (the stage was reached before), ``duplicate`` (the
    outcome id was seen) or ``not_found``; ``counted``: the stages this outcome counted
    (it and the chain stages it implied), ``routed_ms`` the lead's routing time (-1: none),
    ``outcome`` the lead's outcome afterwards (read by the same script)."""

    status: str
    routed_ms: int
    counted: tuple[str, ...] = ()
    outcome: LeadOutcome = LeadOutcome(stages={})


class FunnelState:
    """Outcome writes and aggregate reads on one :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.keys = store.keys

    async def routed_at(self, lead_id: str) -> int | None:
        """The lead's routing time (ms; -1 when it has none), None when there is no such
        lead."""
        with translate_errors("outcome"):
            self.store.round_trips += 1
            state, at = await self.store.wire.call("HMGET", self.keys.lead(lead_id), "state",
                                                   "assigned_at")
        if state is None:
            return None
        return int(at) if at else -1

    async def routed_many(self, lead_ids: Sequence[str]) -> dict[str, int | None]:
        """:meth:`routed_at` of many leads (one pipelined round trip)."""
        if not lead_ids:
            return {}
        with translate_errors("outcome"):
            self.store.round_trips += 1
            replies = await self.store.wire.batch(
                [("HMGET", self.keys.lead(i), "state", "assigned_at") for i in lead_ids])
        out: dict[str, int | None] = {}
        for lead_id, reply in zip(lead_ids, replies, strict=True):
            check_reply("outcome", reply)
            out[lead_id] = None if reply[0] is None else int(reply[1]) if reply[1] else -1
        return out

    async def record(self, lead_id: str, *, spec: FunnelSpec, stage: str, at: dt.datetime,
                     now: dt.datetime, amount: Decimal | None = None, currency: str = "",
                     reason: str = "", outcome_id: str = "",
                     routed_ms: int | None = None) -> OutcomeResult:
        """Record one outcome (one EVALSHA; a second when the lead's routing day was not
        known or guessed wrong)."""
        routed = routed_ms
        for _ in range(3):
            if routed is None:
                routed = await self.routed_at(lead_id)
                if routed is None:
                    return OutcomeResult(status="not_found", routed_ms=-1)
            start = _day_start(routed if routed >= 0 else to_ms(now))
            arg = _OutcomeArg(
                id=lead_id, now=to_ms(now), stage=stage, at=to_ms(at),
                amount=str(amount) if amount is not None else "",
                units=units_of(amount) if amount is not None else -1,
                currency=currency if amount is not None else "", reason=reason,
                oid=outcome_id, day=start if routed >= 0 else -1, fk=3,
                fexp=expiry_ms(start, self.store.retention_ms), fs=funnel_arg(spec),
                hmax=self.store.history_max, read=outcome_fields(spec.stages))
            keys = [pack_keys((self.keys.lead(lead_id), self.keys.history(lead_id))),
                    day_keys(self.keys, day_of(start))]
            reply = await self.store.run_script("outcome", keys, [_encode(arg)])
            status = reply[0].decode()
            if status != "moved":
                read = outcome_fields(spec.stages)
                values = reply[3] if len(reply) > 3 else []
                return OutcomeResult(
                    status=status, routed_ms=int(reply[1]),
                    counted=tuple(r.decode() for r in reply[2]) if len(reply) > 2 else (),
                    outcome=outcome_of({f: v for f, v in zip(read, values, strict=False)
                                        if v is not None}))
            routed = int(reply[1])
        raise RuntimeError("outcome: the lead's routing day kept moving")  # pragma: no cover

    async def read_days(self, dim: str, days: Sequence[str], *,
                        sealed: str = "") -> list[dict[bytes, bytes]]:
        """The aggregates of ``dim`` for each day (field → value as stored: a count, or a
        histogram blob), one pipelined round trip. A day's routed counts are its routed
        combinations (``funnel:routed:<day>``) summed here, or, once folded, the ``n`` fields;
        days before ``sealed`` (no commit writes them any more) that still have combinations
        are folded for the next report (``lua/funnel_fold.lua``, a second round trip)."""
        if not days:
            return []
        with translate_errors("funnel"):
            self.store.round_trips += 1
            # The combinations first: a fold between the two reads then leaves them read and
            # the `n` fields ignored (never counted twice or not at all).
            replies = await self.store.wire.batch(
                [("HGETALL", k) for d in days
                 for k in (self.keys.funnel_routed(d), self.keys.funnel(dim, d))])
        index = FUNNEL_DIMS.index(dim)
        out: list[dict[bytes, bytes]] = []
        fold: list[str] = []
        for day, routed, flat in zip(days, replies[::2], replies[1::2], strict=True):
            check_reply("funnel", routed)
            check_reply("funnel", flat)
            it = iter(flat)
            fields = dict(zip(it, it, strict=True))
            if routed:
                fields = {f: v for f, v in fields.items() if not f.endswith(b"\x1fn")}
                for combo, n in zip(routed[::2], routed[1::2], strict=True):
                    parts = combo.split(b"\x1f")
                    if len(parts) == len(FUNNEL_DIMS):
                        field = parts[index] + b"\x1fn"
                        fields[field] = b"%d" % (int(fields.get(field, 0)) + int(n))
                if day < sealed:
                    fold.append(day)
            out.append(fields)
        for day in fold:
            await self.store.run_script("funnel_fold", [pack_keys(
                (self.keys.funnel_routed(day), *self.keys.funnel_day(day)))], [])
        return out


def commit_groups(values: Sequence[Any]) -> tuple[str, ...]:
    """The commit's groups in :data:`FUNNEL_DIMS` order ('' → ``(none)``)."""
    return tuple(str(v) if v else "(none)" for v in values)
