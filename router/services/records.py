"""The stored decision of a lead: :class:`Record` (written at commit, rewritten by re-scoring)
and the public :class:`leadrouter_sdk.Decision` built from what is stored.

A neutral home: live routing (router/services/leads.py), re-scoring
(router/services/engagement.py) and the SLA worker (router/services/sla.py) all read and write
records, and none of them imports another to do so.
"""

from __future__ import annotations

import datetime as dt

import msgspec
from leadrouter_sdk import Assignment, Decision, Lead, Score, Sla, Step
from leadrouter_sdk import HistoryEntry as PublicHistory

from router.state.models import StoredLead

__all__ = ["Record", "UnknownLead", "decode_record", "encode", "from_stored"]


class UnknownLead(LookupError):
    """No stored lead with that id (never created, expired or erased); the API answers 404."""


class Record(msgspec.Struct, kw_only=True):
    """What is stored with a lead at commit (the live owner/SLA fields live beside it)."""

    lead: Lead
    status: str
    score: Score
    territory: str | None
    segment: str | None
    route_kind: str
    route_rule: str | None
    route_reason: str
    sla_policy: str | None
    rules_version: str
    created_at: dt.datetime
    matched: tuple[str, ...]
    explanation: tuple[Step, ...]
    source: str | None = None


# One encoder and one decoder for the whole process: msgspec builds them once per type.
encode = msgspec.json.Encoder().encode
decode_record = msgspec.json.Decoder(Record).decode
_decode_step = msgspec.json.Decoder(Step).decode


def _live_explanation(stored: StoredLead, steps: tuple[Step, ...]) -> tuple[Step, ...]:
    """The stored decision's steps with those a later move replaced (a reject, an SLA
    escalation, a re-route: router/state/lua/_sla.lua ``explain_move``): the assignment step
    says why the lead is where it is now, the qualification step why it has its status now."""
    if stored.route_step is None and stored.status_step is None:
        return steps  # never moved since the commit (most leads): nothing to decode
    live = {step.stage: step for step in map(_decode_step, filter(None, (
        stored.route_step, stored.status_step)))}
    shown = tuple(live.pop(step.stage, step) for step in steps)
    return (*shown, *live.values())  # a stage the decision did not explain comes last


def from_stored(stored: StoredLead, *, duplicate: bool = False) -> Decision:
    """The public decision of a stored lead: the record plus its live fields and history. The
    live fields win: the owner, queue, status and reason a move after the commit set, and the
    explanation steps it left; the history keeps every earlier one."""
    record = decode_record(stored.decision)
    # pending, met, late, breached, stopped (router/services/sla.py)
    sla_state = stored.sla_state or None
    if sla_state is None and stored.due_at is not None:
        sla_state = "pending" if stored.state in ("assigned", "queued") else stored.state
    history = tuple(
        PublicHistory(at=h.at, event=h.event, detail={
            k: v for k, v in msgspec.structs.asdict(h).items()
            if k not in ("at", "event", "data") and v is not None} | h.data)
        for h in stored.history)
    return Decision(
        lead_id=stored.lead_id, status=stored.status or record.status, score=record.score,
        territory=record.territory, segment=record.segment,
        assignment=Assignment(owner=stored.owner, pool=stored.pool, queue=stored.queue,
                              rule=stored.rule, strategy=stored.strategy,
                              reason=stored.reason or record.route_reason),
        sla=Sla(policy=stored.sla_policy, due_at=stored.due_at, state=sla_state),
        rules_version=record.rules_version, duplicate=duplicate,
        created_at=record.created_at, matched=record.matched,
        explanation=_live_explanation(stored, record.explanation), history=history)
