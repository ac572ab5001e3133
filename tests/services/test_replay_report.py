"""The replay report (router/services/replay_report.py) over hand-built replayed leads: exact
counts, fairness with weights, dead rules, bounded samples, and a stable JSON shape."""

from __future__ import annotations

import tracemalloc

import msgspec
from _replay_data import build, lead, outcome

from router.services.replay_report import Report, ReportBuilder


def test_counts_transitions_and_volumes_exactly() -> None:
    r = build()
    assert r.replayed == 10
    assert r.skipped.count == 3
    assert r.skipped.by_reason == {"rules version not given": 1, "stored before replay": 2}
    assert r.changed == 7
    assert r.changed_by_field["status"] == 4 and r.changed_by_field["owner"] == 3
    assert r.changed_by_field["score"] == 1 and r.changed_by_field["grade"] == 0
    got = {(t.field, t.from_, t.to): t.count for t in r.transitions}
    assert got == {("status", "sql", "mql"): 4, ("owner", "bob", "ann"): 2,
                   ("owner", "ann", None): 1, ("pool", "rr", None): 1,
                   ("queue", None, "unassigned"): 1, ("sla_policy", "std", None): 1}
    matrix = {(t.from_, t.to): t.count for t in r.status_matrix}
    assert matrix == {("mql", "mql"): 6, ("sql", "mql"): 4}
    assert {(v.key, v.before, v.after, v.delta) for v in r.by_status} == {
        ("mql", 6, 10, 4), ("sql", 4, 0, -4)}
    assert {(v.key, v.before, v.after) for v in r.by_pool} == {("rr", 10, 9), (None, 0, 1)}
    assert {(v.key, v.before, v.after) for v in r.by_queue} == {(None, 10, 9),
                                                                ("unassigned", 0, 1)}
    assert [(v.key, v.before, v.after) for v in r.sla_load] == [("rr", 10, 9)]
    assert r.rules_versions == {"v1": 8, "v2": 2}


def test_owner_load_and_weighted_fairness() -> None:
    owners = {o.owner: o for o in build().by_owner}
    ann, bob = owners["ann"], owners["bob"]
    assert (ann.before, ann.after, ann.delta) == (4, 5, 1)
    assert (bob.before, bob.after, bob.delta) == (6, 4, -2)
    (fa,) = ann.fairness
    # before: ann 4 of 10 pool leads with weight 1 of 4 -> 0.4 / 0.25 = 1.6
    assert (fa.leads_before, fa.share_before, fa.fairness_before) == (4, 0.4, 1.6)
    # after: 5 of 9 with weight 1 of 2 -> 0.5556 / 0.5
    assert (fa.leads_after, fa.share_after, fa.fairness_after) == (5, 0.5556, 1.1111)
    (fb,) = bob.fairness
    assert (fb.weight_before, fb.weight_after) == (3, 1)
    assert fb.fairness_before == 0.8  # 0.6 / 0.75
    assert owners[None].after == 1


def test_rule_hits_dead_rules_and_histogram() -> None:
    r = build()
    hits = {h.rule: (h.before, h.after, h.delta) for h in r.rules}
    assert hits == {"fit-big": (10, 10, 0), "to-rr": (10, 9, -1), "sql-threshold": (4, 0, -4),
                    "to-queue": (0, 1, 1)}
    # by |change|, then by hits after
    assert [h.rule for h in r.rules] == ["sql-threshold", "to-rr", "to-queue", "fit-big"]
    assert r.dead_rules == ["never"]
    bins = {b.bin: (b.before, b.after) for b in r.score_histogram}
    assert bins["50-60"] == (5, 5) and bins["70-80"] == (4, 4)
    assert bins["90-100"] == (1, 0) and bins[">=100"] == (0, 1)
    assert sum(b.before for b in r.score_histogram) == 10
    assert r.score_mean_before == 64.5 and r.score_mean_after == 65.5  # (3*50+4*75+2*50+95)/10


def test_samples_are_bounded_per_transition_and_name_the_rule() -> None:
    r = build()
    status = [s for s in r.samples if s.field == "status"]
    assert [s.lead_id for s in status] == ["L3", "L4"]  # 2 per transition, arrival order
    assert status[0].difference == "sql-threshold" and status[0].rules_lost == ["sql-threshold"]
    assert status[0].after.explanation[0].outcome == "mql"
    queue = next(s for s in r.samples if s.field == "pool")
    assert queue.difference == "to-rr -> to-queue" and queue.rules_gained == ["to-queue"]


def test_json_shape_is_stable() -> None:
    data = msgspec.json.decode(msgspec.json.encode(build()))
    for key in ("replayed", "skipped", "changed", "transitions", "by_pool", "by_owner",
                "by_grade", "by_territory", "by_segment", "by_queue", "rules", "dead_rules",
                "score_histogram", "sla_load", "by_sla_policy", "samples"):
        assert key in data, key
    assert set(data["transitions"][0]) == {"field", "from", "to", "count"}
    assert set(data["skipped"]) == {"count", "by_reason"}
    assert set(data["by_owner"][0]) >= {"owner", "before", "after", "delta", "fairness"}
    assert msgspec.json.decode(msgspec.json.encode(build()), type=Report) == build()


def test_empty_report() -> None:
    r = ReportBuilder().finish(candidate_rules=["a"])
    assert (r.replayed, r.changed, r.skipped.count, r.transitions) == (0, 0, 0, [])
    assert r.dead_rules == ["a"] and r.score_mean_before is None


def test_memory_stays_bounded_over_many_leads() -> None:
    b = ReportBuilder()
    before, after = outcome("sql", 75), outcome("mql", 65, owner="bob")
    for i in range(2000):
        b.add(lead(i, before, after))
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    for i in range(2000, 50000):
        b.add(lead(i, before, after))
        b.add(lead(i, before, before))  # unchanged leads take the fast path
    grown = tracemalloc.get_traced_memory()[0] - start
    tracemalloc.stop()
    assert grown < 64 * 1024, grown  # counters only: nothing per lead is kept
    report = b.finish()
    assert (report.changed, report.replayed) == (50000, 98000)
    assert {(v.key, v.before, v.after) for v in report.by_status} == {("sql", 98000, 48000),
                                                                      ("mql", 0, 50000)}
