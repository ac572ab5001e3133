"""SLA facts bucketed for the console's charts (router/services/sla_charts.py)."""

from __future__ import annotations

import datetime as dt

from router.services.sla_charts import TTA_EDGES, TTA_LABELS, sla_series
from router.state.sla import Fact

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def fact(kind: str, minutes: float, *, pool: str = "rr", policy: str = "fast",
         queue: str = "", **extra: object) -> Fact:
    return Fact(kind=kind, at=T0 + dt.timedelta(minutes=minutes), lead_id="l", policy=policy,
                pool=pool, queue=queue, owner="r1", **extra)  # type: ignore[arg-type]


def test_hourly_buckets_per_pool_and_policy() -> None:
    facts = [fact("breach", 5), fact("breach", 70), fact("breach", 75, pool="", queue="q"),
             fact("reassign", 80, policy=""), fact("accept", 10, tta_ms=90_000, in_time=True),
             fact("handoff", 1), fact("recycle", 3, reason="no_budget")]
    s = sla_series(facts, T0, T0 + dt.timedelta(hours=3))
    assert s.hourly and len(s.buckets) == 4 and s.buckets[0] == T0
    assert s.breaches_by_pool == {"queue:q": [0, 1, 0, 0], "rr": [1, 1, 0, 0]}
    assert s.breaches_by_policy == {"fast": [1, 2, 0, 0]}
    assert s.reassigned_by_pool == {"rr": [0, 1, 0, 0]}
    assert s.reassigned_by_policy == {"(none)": [0, 1, 0, 0]}
    assert s.tta_seconds == [90.0]


def test_long_windows_are_daily_and_facts_outside_are_ignored() -> None:
    facts = [fact("breach", 60 * 24 * 2), fact("breach", -60 * 24 * 30)]
    s = sla_series(facts, T0, T0 + dt.timedelta(days=6))
    assert not s.hourly and len(s.buckets) == 7
    assert s.buckets[0] == T0.replace(hour=0)
    assert s.breaches_by_pool == {"rr": [0, 0, 1, 0, 0, 0, 0]}


def test_time_to_accept_bins_have_labels() -> None:
    assert len(TTA_EDGES) == len(TTA_LABELS) and list(TTA_EDGES) == sorted(TTA_EDGES)
