"""A source's ``outcomes:`` (rules/intake.yaml): how its deliveries become outcomes.

```yaml
sources:
  hubspot:
    type: hubspot
    secret_env: LEADROUTER_HUBSPOT_SECRET
    outcomes:
      stages: {appointmentscheduled: meeting, qualifiedtobuy: opportunity,
               closedwon: won, closedlost: lost}     # sender's stage → a funnel stage
  crm:
    type: json
    outcomes:
      stages: {Won: won, Lost: lost}
      fields: {stage: deal.stage, external_id: deal.lead_ref, at: deal.changed_at,
               amount: deal.value, currency: deal.currency, reason: deal.loss_reason,
               outcome_id: event_id}                # our outcome field → the sender's path
```

A generic JSON item is an outcome when it has the ``stage`` path, a lead otherwise. HubSpot
sends deals (``properties.dealstage``) from a workflow webhook; see router/intake/outcomes.py.
Mapped stages are checked against the funnel (``funnel:`` of the same rules, else the default).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Annotated, Any, Final

import msgspec

from router.engine import Document, RuleError
from router.engine.funnel import DEFAULT_FUNNEL

__all__ = ["OUTCOME_FIELDS", "OutcomeMap", "OutcomesSpec", "compile_outcomes", "funnel_stages"]

OUTCOME_FIELDS: Final = ("stage", "at", "amount", "currency", "reason", "outcome_id",
                         "external_id", "email", "lead_id", "source")
_Path = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class OutcomesSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    stages: dict[str, Annotated[str, msgspec.Meta(min_length=1, max_length=40)]] = {}
    fields: dict[str, _Path] = {}
    description: str | None = None


class OutcomeMap(msgspec.Struct, frozen=True, kw_only=True):
    """Compiled: ``stages`` (the sender's value, lower-cased → our stage), ``fields`` (our
    outcome field → the sender's dotted path)."""

    stages: dict[str, str]
    fields: dict[str, str]


def funnel_stages(value: Any) -> Sequence[str]:
    """The stages of a ``funnel:`` section as written (the default funnel's when unreadable:
    the funnel's own errors are reported by the engine)."""
    stages = value.get("stages") if isinstance(value, dict) else None
    if isinstance(stages, list) and all(isinstance(s, str) for s in stages):
        return stages
    return DEFAULT_FUNNEL.stages


def _close(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else f"use one of: {', '.join(options)}"


def compile_outcomes(doc: Document, path: tuple[str | int, ...], spec: OutcomesSpec,
                     kind: str, stages: Sequence[str], errors: list[RuleError],
                     owner: str) -> OutcomeMap | None:
    n = len(errors)
    where = (*path, "outcomes")
    for name in spec.fields:
        if name not in OUTCOME_FIELDS:
            errors.append(doc.error((*where, "fields", name), f"`{name}` is not an outcome "
                                    "field", rule=owner, fix=_close(name, OUTCOME_FIELDS)))
    if kind == "json" and "stage" not in spec.fields:
        errors.append(doc.error(where, "a JSON source's outcomes need `fields: {stage: ...}`",
                                rule=owner, fix="name the path of the stage, e.g. "
                                "fields: {stage: deal.stage, external_id: deal.lead_ref}"))
    for theirs, ours in spec.stages.items():
        if ours not in stages:
            errors.append(doc.error((*where, "stages", theirs), f"`{ours}` is not a funnel "
                                    "stage", rule=owner, fix=_close(ours, stages)))
    if len(errors) > n:
        return None
    return OutcomeMap(stages={str(k).strip().lower(): v for k, v in spec.stages.items()},
                      fields=dict(spec.fields))
