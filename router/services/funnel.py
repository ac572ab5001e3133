"""Funnel analytics: ``GET /v1/funnel?since=&until=&by=`` from the per-day aggregates.

The leads counted are those **routed** between ``since`` and ``until`` (whole UTC days: a
cohort), grouped ``by`` one of :data:`FUNNEL_DIMS` as they were at routing (``pool`` and
``owner``: where the commit put the lead; ``rule``: the routing rule that routed it;
``source``: the lead's own ``source`` field, else the channel it came in through). For each
group: how many were routed and reached each stage (exact counts), the conversion between
consecutive stages, the time between stages (count and mean exact; median and p90 from a log
histogram, within :data:`RESOLUTION` of the exact values), the won amount per currency, and
the sales velocity (opportunities * win rate * average deal / cycle length) with its inputs.

Reads ``days`` hashes of one dimension in one round trip (router/state/funnel.py): the answer
costs the same over 1k or 1M leads. :func:`build_report` is pure.
"""

from __future__ import annotations

import array
import datetime as dt
import itertools
import math
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Final

import msgspec

from router.engine.funnel import FunnelSpec
from router.services.rules import RulesManager
from router.state.funnel import FUNNEL_DIMS, UNITS, FunnelState, bucket_mid_ms
from router.state.store import Store

__all__ = ["MAX_DAYS", "RESOLUTION", "Conversion", "FunnelGroup", "FunnelReport",
           "FunnelService", "SalesVelocity", "Velocity", "build_report", "days_between"]

MAX_DAYS: Final = 400
RESOLUTION: Final = 0.045  # 2^(1/16) - 1: a histogram quantile's largest relative error
_SEP = "\x1f"
_BLOB = b"\x1fv\x1f"  # a stage pair's times (a blob), not a count


class Conversion(msgspec.Struct, kw_only=True):
    """From one stage to the next: ``rate`` = ``reached`` / ``entered`` (None: none entered)."""

    from_stage: str
    to_stage: str
    entered: int
    reached: int
    rate: float | None


class Velocity(msgspec.Struct, kw_only=True):
    """Time between two stages of the same leads (both known): ``count`` and ``mean_seconds``
    exact, ``median_seconds`` / ``p90_seconds`` (nearest rank) within ``RESOLUTION``."""

    from_stage: str
    to_stage: str
    count: int
    mean_seconds: float | None
    median_seconds: float | None
    p90_seconds: float | None


class SalesVelocity(msgspec.Struct, kw_only=True):
    """Revenue per day the group's pipeline moves, in one currency: ``opportunities`` *
    ``win_rate`` * ``average_deal`` / ``cycle_days`` (None when an input is missing).
    ``opportunities``: leads that reached the converted stage; ``win_rate``: won ÷ that;
    ``average_deal``: won amount ÷ won leads with an amount in this currency;
    ``cycle_days``: mean time from routing to won."""

    currency: str
    opportunities: int
    won: int
    win_rate: float | None
    average_deal: str | None
    cycle_days: float | None
    per_day: str | None


class FunnelGroup(msgspec.Struct, kw_only=True):
    group: str
    routed: int
    reached: dict[str, int]
    conversion: list[Conversion]
    velocity: list[Velocity]
    won_amount: dict[str, str]
    sales_velocity: list[SalesVelocity]


class FunnelReport(msgspec.Struct, kw_only=True):
    since: dt.date
    until: dt.date
    by: str
    stages: list[str]
    converted: str
    resolution: float
    total: FunnelGroup
    groups: list[FunnelGroup]


class _Acc:
    """One group's sums. A stage pair's times are one little-endian blob (lua/_funnel.lua):
    the sum in ms (u64) then u32 bucket counts, read as one big integer: adding two adds the
    sums and every bucket at once (no lane nears its width)."""

    __slots__ = ("amount", "hist", "reached", "routed", "won")

    def __init__(self) -> None:
        self.routed = 0
        self.reached: Counter[str] = Counter()
        self.hist: Counter[tuple[str, str]] = Counter()
        self.amount: Counter[str] = Counter()
        self.won: Counter[str] = Counter()

    def add(self, parts: list[str], value: int) -> None:
        kind = parts[0]
        if kind == "v" and len(parts) == 3:
            self.hist[parts[1], parts[2]] += value
        elif kind == "n":
            self.routed += value
        elif kind == "s" and len(parts) == 2:
            self.reached[parts[1]] += value
        elif kind == "a" and len(parts) == 2:
            self.amount[parts[1]] += value
        elif kind == "w" and len(parts) == 2:
            self.won[parts[1]] += value

    def merge(self, other: _Acc) -> None:
        self.routed += other.routed
        self.reached.update(other.reached)
        self.hist.update(other.hist)
        self.amount.update(other.amount)
        self.won.update(other.won)


def _unpack(blob: int) -> tuple[int, list[int]]:
    """(sum of the times in ms, the bucket counts) of a summed blob."""
    total, lanes = blob & (2**64 - 1), blob >> 64
    raw = lanes.to_bytes((lanes.bit_length() + 31) // 32 * 4, "little")
    return total, list(array.array("I", raw)) if sys.byteorder == "little" else [
        int.from_bytes(raw[i:i + 4], "little") for i in range(0, len(raw), 4)]


def _quantile(lanes: list[int], q: float) -> float | None:
    n = sum(lanes)
    if n <= 0:
        return None
    rank, seen = max(1, math.ceil(q * n)), 0
    for k, count in enumerate(lanes):
        seen += count
        if seen >= rank:
            return round(bucket_mid_ms(k) / 1000, 3)
    return None  # pragma: no cover


def _money(units: int | Decimal) -> str:
    return str((Decimal(units) / UNITS).quantize(Decimal("0.01")))


def _sales(spec: FunnelSpec, acc: _Acc) -> list[SalesVelocity]:
    if spec.won is None:
        return []
    opps, won = acc.reached[spec.converted], acc.reached[spec.won]
    rate = won / opps if opps else None
    t, lanes = _unpack(acc.hist[("routed", spec.won)])
    c = sum(lanes)
    cycle = t / c / 86_400_000 if c else None
    out = []
    for cur in sorted(acc.amount):
        avg = Decimal(acc.amount[cur]) / acc.won[cur] if acc.won[cur] else None
        per_day = None
        if avg is not None and rate is not None and cycle:
            per_day = _money(Decimal(opps) * Decimal(repr(rate)) * avg / Decimal(repr(cycle)))
        out.append(SalesVelocity(currency=cur, opportunities=opps, won=won, win_rate=rate,
                                 average_deal=_money(avg) if avg is not None else None,
                                 cycle_days=round(cycle, 4) if cycle else None,
                                 per_day=per_day))
    return out


def _group(name: str, spec: FunnelSpec, acc: _Acc) -> FunnelGroup:
    conv = []
    steps = [("routed", acc.routed)] + [(s, acc.reached[s]) for s in spec.chain]
    for (a, na), (b, nb) in itertools.pairwise(steps):
        conv.append(Conversion(from_stage=a, to_stage=b, entered=na, reached=nb,
                               rate=nb / na if na else None))
    for e in spec.stages:
        if e in spec.exits:
            conv.append(Conversion(from_stage="routed", to_stage=e, entered=acc.routed,
                                   reached=acc.reached[e],
                                   rate=acc.reached[e] / acc.routed if acc.routed else None))
    vel = []
    for pair in spec.pairs():
        t, lanes = _unpack(acc.hist[pair])
        c = sum(lanes)
        vel.append(Velocity(from_stage=pair[0], to_stage=pair[1], count=c,
                            mean_seconds=round(t / c / 1000, 3) if c else None,
                            median_seconds=_quantile(lanes, 0.5),
                            p90_seconds=_quantile(lanes, 0.9)))
    return FunnelGroup(group=name, routed=acc.routed,
                       reached={s: acc.reached[s] for s in spec.stages}, conversion=conv,
                       velocity=vel,
                       won_amount={c: _money(u) for c, u in sorted(acc.amount.items())},
                       sales_velocity=_sales(spec, acc))


def build_report(days: Sequence[Mapping[bytes, bytes]], spec: FunnelSpec, *, by: str,
                 since: dt.date, until: dt.date) -> FunnelReport:
    """The report from the day hashes of dimension ``by`` (field → value as stored). The days
    are summed field by field first (a count as a number, a time blob as a big integer), so
    each distinct field is parsed once however many days there are."""
    sums: dict[bytes, int] = {}
    get = sums.get
    for fields in days:
        for field, value in fields.items():
            number = int.from_bytes(value, "little") if _BLOB in field else int(value)
            sums[field] = get(field, 0) + number
    groups: dict[str, _Acc] = {}
    for field, number in sums.items():
        group, *parts = field.decode(errors="replace").split(_SEP)
        if parts:
            acc = groups.get(group)
            if acc is None:
                acc = groups[group] = _Acc()
            acc.add(parts, number)
    total = _Acc()
    for acc in groups.values():
        total.merge(acc)
    return FunnelReport(since=since, until=until, by=by, stages=list(spec.stages),
                        converted=spec.converted, resolution=RESOLUTION,
                        total=_group("(all)", spec, total),
                        groups=[_group(g, spec, groups[g]) for g in sorted(groups)])


def days_between(since: dt.date, until: dt.date) -> list[str]:
    n = (until - since).days
    return [(since + dt.timedelta(days=i)).isoformat() for i in range(n + 1)]


class FunnelService:
    """``GET /v1/funnel``: the live funnel spec over the stored aggregates."""

    def __init__(self, store: Store, *, rules: RulesManager,
                 clock: Callable[[], dt.datetime]) -> None:
        self.state = FunnelState(store)
        self.rules = rules
        self.now = clock

    async def report(self, since: dt.date, until: dt.date, by: str) -> FunnelReport:
        """Raises ValueError for a ``by`` that is not a dimension or a range too long."""
        if by not in FUNNEL_DIMS:
            raise ValueError(f"by={by[:40]!r} is not a dimension — use one of: "
                             f"{', '.join(FUNNEL_DIMS)}")
        n = (until - since).days + 1
        if n > MAX_DAYS:
            raise ValueError(f"{n} days asked for — ask for at most {MAX_DAYS} days "
                             "(narrow since / until)")
        days = days_between(since, until)
        spec = self.rules.current.funnel
        sealed = (self.now().astimezone(dt.UTC).date() - dt.timedelta(days=2)).isoformat()
        return build_report(await self.state.read_days(by, days, sealed=sealed), spec, by=by,
                            since=since, until=until)
