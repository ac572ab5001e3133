"""Rule text shared by several test modules, written once here.

* :data:`SERVICE_RULES`: the suite's default rules directory (``_service.write_rules``, the
  ``rules_dir`` and ``start_service`` fixtures).
* :data:`SLA_SCORING` and :func:`sla_reps`: the scoring and the reps of the handoff SLA tests
  (tests/services/test_sla.py on a controllable clock, tests/api/test_sla.py over HTTP); each
  keeps its own routing and SLA policies, which its assertions are about.

Reps work around the clock in UTC (:func:`utc_reps`), so routing does not depend on when the
suite runs.
"""

from __future__ import annotations

__all__ = ["ALL_DAY", "SERVICE_RULES", "SLA_SCORING", "sla_reps", "utc_reps"]

ALL_DAY = '{mon-sun: "00:00-24:00"}'


def utc_reps(*reps: str, named: bool = False) -> str:
    """``reps.yaml`` list lines: each rep works 00:00-24:00 every day in UTC (``named``: with a
    display name, ``Rep R1``)."""
    return "".join(
        f"  - {{id: {rep}, {f'name: Rep {rep.upper()}, ' if named else ''}timezone: UTC, "
        f"working_hours: {ALL_DAY}}}\n" for rep in reps)


# Pools (all members work around the clock, in UTC):
#   rr      round_robin over r1 r2 r3 (the default route)
#   wrr     weighted_round_robin, w1:w2:w3 = 3:2:1          (campaign "wrr")
#   capped  round_robin over c1 c2, daily_cap 40 → queue capped-overflow   (campaign "capped")
#   ll      least_loaded over r1 r2, working hours on        (campaign "ll")
# Score: fit.big 25 (employees >= 1000), fit.us 10 (country US), bant.budget 20 (budget >= 50k),
# eng.demo 30; score >= 80 → sql, campaign "junk" → bad_lead, else mql.
SERVICE_RULES: dict[str, str] = {
    "reps.yaml": "reps:\n" + utc_reps("r1", "r2", "r3", "w1", "w2", "w3", "c1", "c2", "owner1",
                                      named=True),
    "scoring.yaml": """\
scoring:
  fit:
    - {id: fit.big, when: "employees >= 1000", points: 25}
    - {id: fit.us, when: 'country == "US"', points: 10}
  bant:
    - {id: bant.budget, when: "budget >= 50000", points: 20}
  engagement:
    - {id: eng.demo, when: 'count("demo_requested", days=30) >= 1', points: 30}
grades: {A: 80, B: 50, C: 20, D: 0}
qualification:
  - {id: q.bad, status: bad_lead, when: 'campaign == "junk"'}
  - {id: q.sql, status: sql, when: "score >= 80"}
  - {id: q.mql, status: mql, when: "true"}
""",
    "routing.yaml": """\
territories:
  - {id: us, when: 'country == "US"'}
  - {id: other, when: "true"}
segments:
  - {id: enterprise, when: "employees >= 1000"}
  - {id: smb, when: "true"}
pools:
  rr: {strategy: round_robin, members: [r1, r2, r3], working_hours: false}
  wrr:
    strategy: weighted_round_robin
    members: [{rep: w1, weight: 3}, {rep: w2, weight: 2}, {rep: w3, weight: 1}]
    working_hours: false
  capped:
    strategy: round_robin
    members: [c1, c2]
    daily_cap: 40
    working_hours: false
    overflow: {queue: capped-overflow}
  ll: {strategy: least_loaded, members: [r1, r2], working_hours: true}
assignment:
  - id: account-owner
    when: 'account_owner != null and status != "bad_lead"'
    assign: account_owner
  - {id: to-review, when: 'status == "bad_lead"', queue: review}
  - {id: to-wrr, when: 'campaign == "wrr"', pool: wrr}
  - {id: to-capped, when: 'campaign == "capped"', pool: capped}
  - {id: to-ll, when: 'campaign == "ll"', pool: ll}
  - {id: to-rr, when: "true", pool: rr}
""",
    "sla.yaml": """\
sla:
  - {id: sla-sql, when: 'status == "sql"', accept_within: 10m, clock: wall, on_breach: reassign}
  - {id: sla-mql, when: 'status == "mql"', accept_within: 1h, clock: wall, on_breach: notify}
""",
    "tests/cases.yaml": """\
cases:
  - name: a big US lead with a budget scores 55 and goes to the round-robin pool
    lead: {email: a@big.example, employees: 5000, country: US, budget: 100000}
    expect: {status: mql, score: 55, pool: rr, rule: to-rr}
""",
}

# The SLA tests: every lead is an mql (fit.big 25 for employees >= 1000, else 0).
SLA_SCORING = """\
scoring:
  fit:
    - {id: fit.big, when: "employees >= 1000", points: 25}
grades: {A: 80, B: 50, C: 20, D: 0}
qualification:
  - {id: q.mql, status: mql, when: "true"}
"""


def sla_reps(*utc: str) -> str:
    """``reps.yaml`` of the SLA tests: ``utc`` reps around the clock, and ny1, ny2 working
    New York business hours (mon-fri 09:00-17:00), for the business-clock SLAs."""
    return "reps:\n" + utc_reps(*utc) + """\
  - {id: ny1, timezone: America/New_York, working_hours: {mon-fri: "09:00-17:00"}}
  - {id: ny2, timezone: America/New_York, working_hours: {mon-fri: "09:00-17:00"}}
"""
