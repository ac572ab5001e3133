"""Hand-built replayed leads and the report they make (tests/services/test_replay_report*.py
and the CLI/API tests): counts a reader can check by hand."""

from __future__ import annotations

import datetime as dt

from leadrouter_sdk import Step

from router.services.replay_model import Outcome, PoolFacts, ReplayedLead, Skip
from router.services.replay_report import Report, ReportBuilder

__all__ = ["POOLS", "POOLS_AFTER", "build", "lead", "outcome"]

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def outcome(status: str = "mql", score: float = 50, pool: str | None = "rr",
            owner: str | None = "ann", **kw: object) -> Outcome:
    base: dict[str, object] = {"grade": "B", "territory": "na", "segment": "mid",
                               "queue": None, "sla_policy": "std", "route_rule": "to-rr",
                               "matched": ("fit-big", "to-rr")}
    base.update(kw)
    return Outcome(status=status, score=score, pool=pool, owner=owner, **base)  # type: ignore[arg-type]


def lead(i: int, before: Outcome, after: Outcome, version: str = "v1") -> ReplayedLead:
    return ReplayedLead(lead_id=f"L{i}", created_at=T0 + dt.timedelta(minutes=i),
                        before=before, after=after, rules_version=version)


POOLS = {"rr": PoolFacts(pool="rr", strategy="weighted", weights={"ann": 1, "bob": 3})}
POOLS_AFTER = {"rr": PoolFacts(pool="rr", strategy="weighted", weights={"ann": 1, "bob": 1})}


def build() -> Report:
    b = ReportBuilder(samples_per_transition=2)
    # 3 leads unchanged (ann, score 50)
    for i in range(3):
        b.add(lead(i, outcome(), outcome()))
    # 4 leads: sql -> mql (threshold raised), score unchanged, rule sql-threshold lost
    for i in range(3, 7):
        before = outcome("sql", 75, owner="bob", matched=("fit-big", "sql-threshold", "to-rr"))
        after = outcome("mql", 75, owner="bob",
                        explanation=(Step(stage="status", outcome="mql"),))
        b.add(lead(i, before, after))
    # 2 leads: owner bob -> ann (pool members changed)
    for i in range(7, 9):
        b.add(lead(i, outcome(owner="bob"), outcome(owner="ann"), version="v2"))
    # 1 lead: rr -> unassigned queue, new routing rule, score 95 -> 105
    b.add(lead(9, outcome(score=95), outcome(score=105, pool=None, owner=None,
                                              queue="unassigned", sla_policy=None,
                                              route_rule="to-queue",
                                              matched=("fit-big", "to-queue"))))
    b.skip(Skip(lead_id="old1", reason="stored before replay"))
    b.skip(Skip(lead_id="old2", reason="stored before replay"))
    b.skip(Skip(lead_id="x", reason="rules version not given"))
    return b.finish(candidate_rules=["fit-big", "to-rr", "to-queue", "never"],
                    pools_before=POOLS, pools_after=POOLS_AFTER, candidate_version="cand")
