"""The SLA facts over time, for charts: speed to lead as a distribution, and breaches and
reassignments per pool and per policy per hour or day. Pure (the facts are read by
:meth:`router.services.sla.SlaService.facts`); the totals stay ``build_report``'s."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import msgspec

from router.state.sla import Fact

__all__ = ["TTA_EDGES", "TTA_LABELS", "SlaSeries", "sla_series"]

# Speed-to-lead bins (seconds): what RevOps talks in — under a minute, 5 minutes, an hour...
TTA_EDGES = (0, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600)
TTA_LABELS = ("<1m", "1-5m", "5-15m", "15-30m", "30-60m", "1-4h", "4-24h", ">1d")
_MAX_BUCKETS = 400  # a window this long in hours is drawn per day


class SlaSeries(msgspec.Struct, kw_only=True):
    """Per bucket (``buckets``: their starts, oldest first; ``hourly`` or daily)."""

    buckets: list[dt.datetime]
    hourly: bool
    tta_seconds: list[float]  # every accept's time to accept, in arrival order
    breaches_by_pool: dict[str, list[int]]
    breaches_by_policy: dict[str, list[int]]
    reassigned_by_pool: dict[str, list[int]]
    reassigned_by_policy: dict[str, list[int]]


def _group(fact: Fact) -> str:  # as build_report groups
    if fact.pool:
        return fact.pool
    if fact.queue:
        return f"queue:{fact.queue}"
    return "(direct)"


def _floor(when: dt.datetime, hourly: bool) -> dt.datetime:
    when = when.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return when if hourly else when.replace(hour=0)


def sla_series(facts: Iterable[Fact], since: dt.datetime, until: dt.datetime) -> SlaSeries:
    """Bucket ``facts`` (``since <= at <= until``) per hour for windows up to two days, per
    UTC day beyond; every bucket of the window is there, empty ones as 0."""
    hourly = (until - since) <= dt.timedelta(days=2)
    step = dt.timedelta(hours=1) if hourly else dt.timedelta(days=1)
    start = _floor(since, hourly)
    count = min(_MAX_BUCKETS, int((until - start) / step) + 1)
    buckets = [start + i * step for i in range(count)]
    out = SlaSeries(buckets=buckets, hourly=hourly, tta_seconds=[], breaches_by_pool={},
                    breaches_by_policy={}, reassigned_by_pool={}, reassigned_by_policy={})
    for fact in facts:
        if fact.kind == "accept" and fact.tta_ms is not None:
            out.tta_seconds.append(fact.tta_ms / 1000)
            continue
        if fact.kind == "breach":
            pools, policies = out.breaches_by_pool, out.breaches_by_policy
        elif fact.kind == "reassign":
            pools, policies = out.reassigned_by_pool, out.reassigned_by_policy
        else:
            continue
        i = int((_floor(fact.at, hourly) - start) / step)
        if not 0 <= i < count:
            continue
        for table, name in ((pools, _group(fact)), (policies, fact.policy or "(none)")):
            table.setdefault(name, [0] * count)[i] += 1
    for table in (out.breaches_by_pool, out.breaches_by_policy, out.reassigned_by_pool,
                  out.reassigned_by_policy):
        ordered = dict(sorted(table.items()))
        table.clear()
        table.update(ordered)
    return out
