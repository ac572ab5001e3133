"""What a committed lead's decision was made from, kept with the lead for the replay.

Live routing (router/services/leads.py) encodes a :class:`DecisionInput` with every commit: the
lead as :func:`~router.services.decide.decide` got it (after plugin enrichment, before the
person's traits), the enrichment steps, the :class:`~router.services.decide.DecisionSnapshot`
decide() used, ``spam`` and ``source`` — and the decision as committed (:class:`Committed`), so
a replay's "before" stays the arrival's decision after engagement re-scoring rewrites the
stored record. The commit script stores it in the lead hash (field ``input``) beside the facts
its pool pick read (router/state/inputs.py); the replay (router/services/replay.py) decides
again on it. MessagePack, positional (``array_like``): no field names per lead, never the
ruleset.
"""

from __future__ import annotations

import msgspec
from leadrouter_sdk import Lead, Step

from router.engine.evaluate import Evaluation
from router.services.decide import DecisionSnapshot

__all__ = ["Committed", "DecisionInput", "committed_of", "decode_input", "decode_stored",
           "encode_input"]


class Committed(msgspec.Struct, frozen=True, array_like=True):
    """The committed decision, compactly: what a replay compares (and nothing it rebuilds)."""

    status: str
    score: float
    grade: str | None
    territory: str | None
    segment: str | None
    sla_policy: str | None
    route_rule: str | None
    matched: tuple[str, ...]


class DecisionInput(msgspec.Struct, frozen=True, array_like=True):
    lead: Lead
    snapshot: DecisionSnapshot
    notes: tuple[Step, ...]
    spam: str | None
    source: str
    rules_version: str
    committed: Committed


def committed_of(ev: Evaluation) -> Committed:
    return Committed(ev.status, ev.score.total, ev.score.grade, ev.territory, ev.segment,
                     ev.sla_policy, ev.route.rule, ev.matched)


encode_input = msgspec.msgpack.Encoder().encode
decode_input = msgspec.msgpack.Decoder(DecisionInput).decode


class _StoredLead(Lead, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """A stored :class:`Lead` decoded as it was stored: the same fields and constraints, but
    not normalised again (``Lead.__post_init__`` trims, lowercases, parses phone numbers...:
    the service stored it normalised already)."""

    def __post_init__(self) -> None:
        pass


class _StoredInput(DecisionInput, frozen=True, array_like=True):
    lead: _StoredLead


_decode_stored = msgspec.msgpack.Decoder(_StoredInput).decode


def decode_stored(raw: bytes) -> DecisionInput:
    """:func:`decode_input` for the service's own stored inputs (the replay), without running
    the normalisation again: the lead is decoded into :class:`_StoredLead` (same layout) and
    then made a plain :class:`Lead`. Equal to ``decode_input(raw)`` for every input the
    service wrote (tests/services/test_decide.py: the replay-mode property and
    test_a_stored_input_is_not_normalised_again)."""
    s = _decode_stored(raw)
    lead: Lead = s.lead
    lead.__class__ = Lead  # the same layout (no fields added): a plain Lead from here on
    return DecisionInput(lead, s.snapshot, s.notes, s.spam, s.source, s.rules_version,
                         s.committed)
