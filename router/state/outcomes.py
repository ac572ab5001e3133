"""Outcomes: what happened to a lead after routing (the funnel stages), stored in the lead.

STORAGE CONTRACT (read by the calibration; keep it stable). In the lead hash ``lead:ID``:

    stg:<stage>   epoch ms the lead reached ``<stage>`` (a stage of rules/funnel.yaml), first
                  report wins (a later report of the same stage changes nothing)
    accepted_at   (the SLA field, owner.lua) is the ``accepted`` stage: never copied into
                  ``stg:accepted``; ``stg:accepted`` exists only for a lead accepted by an
                  outcome report (a CRM) without an owner action
    amount        the deal amount as a decimal string (the last one reported), ``currency``
                  its ISO 4217 code, ``lost_reason`` the reason of a lost (or other) outcome
    fg, fc, oid:* internal to the funnel scripts (the lead's funnel groups, the stages
                  counted, outcome ids seen): not part of the contract

Outcomes live and die with the lead hash: they follow its TTL (retention) and erasure
(router/state/erasure.py deletes the hash). The per-day funnel aggregates are counts per group
(no personal data): see router/state/funnel.py.

:func:`read_outcomes` reads many leads in one pipelined round trip; :func:`stage_times` is the
pure mapping over a lead hash already read (``{field: value}``, bytes or str).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from router.engine.funnel import DEFAULT_FUNNEL
from router.state.errors import check_reply, translate_errors
from router.state.store import Store

__all__ = ["STAGE_PREFIX", "LeadOutcome", "outcome_fields", "outcome_of", "read_outcomes",
           "stage_times"]

STAGE_PREFIX = "stg:"
_SLA_STAGES = {"accepted": "accepted_at"}  # stage → the SLA field that records it


class LeadOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """One lead's outcome: the stages reached (stage → epoch ms), the deal amount (a decimal
    string) and its currency, the reason given (lost)."""

    stages: dict[str, int]
    amount: str | None = None
    currency: str | None = None
    reason: str | None = None


def _s(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else value
    return text or None


def stage_times(fields: Mapping[str, bytes | str] | Mapping[bytes, bytes]) -> dict[str, int]:
    """The stages a lead reached → epoch ms, from its hash fields: every ``stg:<stage>`` plus
    ``accepted`` from the SLA's ``accepted_at`` (which wins over ``stg:accepted``)."""
    out: dict[str, int] = {}
    sla: dict[str, int] = {}
    for key, value in fields.items():
        name = key.decode() if isinstance(key, bytes) else key
        text = _s(value)
        if text is None:
            continue
        if name.startswith(STAGE_PREFIX):
            try:
                out[name[len(STAGE_PREFIX):]] = int(text)
            except ValueError:
                continue
        elif name in _SLA_STAGES.values():
            try:
                sla[name] = int(text)
            except ValueError:
                continue
    for stage, field in _SLA_STAGES.items():
        if field in sla:
            out[stage] = sla[field]
    return out


def outcome_of(fields: Mapping[str, bytes | str] | Mapping[bytes, bytes]) -> LeadOutcome:
    """The :class:`LeadOutcome` of a lead hash already read."""
    get = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
    return LeadOutcome(stages=stage_times(fields), amount=_s(get.get("amount")),
                       currency=_s(get.get("currency")), reason=_s(get.get("lost_reason")))


_FIELDS = ("state", "amount", "currency", "lost_reason", *_SLA_STAGES.values())


def outcome_fields(stages: Sequence[str]) -> tuple[str, ...]:
    """The lead hash fields an outcome is read from (``state`` first: None = no lead)."""
    return (*_FIELDS, *(STAGE_PREFIX + s for s in stages))


async def read_outcomes(store: Store, lead_ids: Sequence[str], *,
                        stages: Sequence[str] | None = None) -> dict[str, LeadOutcome]:
    """The outcome of each lead that still exists (one pipelined round trip of HMGETs; a lead
    that is gone is left out, a lead without outcomes has empty ``stages``). ``stages``: the
    stage names to read (the live ruleset's ``Ruleset.funnel.stages``; the default funnel's
    when not given), so the decision and its input are never read."""
    ids = list(dict.fromkeys(lead_ids))
    if not ids:
        return {}
    fields = outcome_fields(stages if stages is not None else DEFAULT_FUNNEL.stages)
    with translate_errors("read_outcomes"):
        store.round_trips += 1
        replies = await store.wire.batch([("HMGET", store.keys.lead(i), *fields) for i in ids])
    out: dict[str, LeadOutcome] = {}
    for lead_id, values in zip(ids, replies, strict=True):
        check_reply("read_outcomes", values)
        if values[0] is None:  # no state: the lead is gone
            continue
        out[lead_id] = outcome_of({f: v for f, v in zip(fields, values, strict=True)
                                   if v is not None})
    return out
