"""The funnel's metrics (issue 19): stages reached and outcomes taken in. No PII labels: the
stage is one of the funnel's (rules/funnel.yaml), the status one of a fixed few.

Imported by router/observability/metrics.py, so they are part of the metrics reference of
docs/operations.md."""

from __future__ import annotations

from router.observability._fast import FastCounter

__all__ = ["FUNNEL_STAGES", "OUTCOMES"]

FUNNEL_STAGES = FastCounter(
    "leadrouter_funnel_stage_total",
    "Leads reaching a funnel stage, by stage (each lead once per stage: accept / contacted "
    "from the owner actions, the rest from outcomes; a stage implied by a later one counts).",
    ["stage"])
OUTCOMES = FastCounter(
    "leadrouter_outcomes_total",
    "Outcome reports taken in, by result: recorded (a new stage), repeat (the stage was "
    "known), duplicate (outcome id seen), not_found, invalid.", ["result"])
