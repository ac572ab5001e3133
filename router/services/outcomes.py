"""Outcomes in: what happened to a lead after routing (meeting, opportunity, won, lost...).

Three ways in, one recording (router/state/funnel.py, ``lua/outcome.lua``):

* ``POST /v1/leads/{lead_id}/outcome`` — by our lead id;
* ``POST /v1/outcomes`` — by ``external_id`` (+ optional ``source``) or ``email``, for CRMs that
  do not keep our id (an email with several leads picks the most recently routed one);
* the intake sources (router/api/sources.py): a HubSpot deal-stage webhook and generic JSON,
  mapped by the source's ``outcomes:`` (router/intake/outcomes.py).

Checks (each refusal an :class:`OutcomeError` the API turns into a problem): the stage must be
one of the funnel's (rules/funnel.yaml), ``at`` not in the future beyond :data:`SKEW`, an
amount a non-negative decimal (at most 4 decimal places) with an ISO 4217 currency. Idempotent:
an ``outcome_id`` seen before changes nothing, and a stage reported again keeps its first time.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Final

import msgspec
import pycountry

from router.engine.funnel import FunnelSpec
from router.observability.funnel import FUNNEL_STAGES, OUTCOMES
from router.services.rules import RulesManager
from router.state.engagement import EngagementStore
from router.state.erasure import lead_ids_of
from router.state.funnel import FunnelState, OutcomeResult
from router.state.models import from_ms
from router.state.store import Store

__all__ = ["SKEW", "OutcomeError", "OutcomeIn", "OutcomeReply", "OutcomeService",
           "parse_amount", "parse_currency"]

SKEW: Final = dt.timedelta(minutes=5)
MAX_AMOUNT: Final = Decimal("100000000000")  # 1e11: exact in the aggregates' integers
_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class OutcomeError(Exception):
    """An outcome refused: ``status`` (404 / 422), a title, the detail ending with the fix and
    the field at fault."""

    def __init__(self, status: int, title: str, detail: str, *, field: str | None = None,
                 kind: str = "validation") -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.field, self.kind = (
            status, title, detail, field, kind)


class OutcomeIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One outcome. ``stage``: a stage of the funnel; ``at``: when it happened (default now);
    ``amount`` (a decimal, as a string or number) with its ISO 4217 ``currency``; ``reason``
    (why it was lost); ``outcome_id``: the sender's id, making a repeat harmless. For
    ``POST /v1/outcomes`` also ``external_id`` (+ ``source``, the lead's channel) or ``email``."""

    stage: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    at: dt.datetime | None = None
    amount: str | int | float | None = None
    currency: Annotated[str, msgspec.Meta(max_length=8)] | None = None
    reason: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    outcome_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None
    external_id: _Id | None = None
    source: Annotated[str, msgspec.Meta(max_length=63)] | None = None
    email: Annotated[str, msgspec.Meta(max_length=320)] | None = None
    lead_id: _Id | None = None


class OutcomeReply(msgspec.Struct, kw_only=True):
    """What an outcome did: ``status`` recorded (a new stage), repeat (the stage was reached
    before: its first time stays) or duplicate (the outcome id was seen: nothing changed);
    ``counted``: the stages it counted in the funnel (with the earlier ones it implied);
    ``stages``: the lead's timeline now, in funnel order."""

    lead_id: str
    stage: str
    status: str
    counted: list[str]
    stages: dict[str, dt.datetime]
    amount: str | None = None
    currency: str | None = None
    reason: str | None = None


def parse_amount(value: str | int | float | None) -> Decimal | None:
    """A non-negative decimal amount with at most 4 decimal places, or None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise OutcomeError(422, "Invalid amount", "`amount` must be a decimal number such as "
                           '"1250.00"', field="amount")
    try:
        amount = Decimal(str(value).strip())
    except decimal.InvalidOperation:
        raise OutcomeError(422, "Invalid amount", f"`amount` {str(value)[:40]!r} is not a "
                           'decimal number — send e.g. "1250.00"', field="amount") from None
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        raise OutcomeError(422, "Invalid amount", f"`amount` {str(value)[:40]!r} must be a "
                           f"non-negative number up to {MAX_AMOUNT} — send e.g. \"1250.00\"",
                           field="amount")
    exp = amount.as_tuple().exponent
    if isinstance(exp, int) and exp < -4:
        raise OutcomeError(422, "Invalid amount", f"`amount` {str(value)[:40]!r} has more than "
                           "4 decimal places — round it (e.g. 1250.00)", field="amount")
    return amount.normalize() if amount == amount.to_integral_value() else amount


def parse_currency(value: str | None) -> str:
    """An ISO 4217 alphabetic code (upper-cased)."""
    code = (value or "").strip().upper()
    if len(code) != 3 or pycountry.currencies.get(alpha_3=code) is None:
        raise OutcomeError(422, "Invalid currency", f"`currency` {str(value)[:10]!r} is not an "
                           "ISO 4217 code — send e.g. EUR, USD, GBP with the amount",
                           field="currency")
    return code


def _stage(spec: FunnelSpec, stage: str) -> str:
    name = stage.strip().lower()
    if name not in spec.stages:
        raise OutcomeError(422, "Unknown stage", f"stage {stage[:40]!r} is not a stage of the "
                           f"funnel — use one of: {', '.join(spec.stages)} (rules/funnel.yaml)",
                           field="stage")
    return name


class OutcomeService:
    """Outcomes for one process: checks, the lead they are for, the recording."""

    def __init__(self, store: Store, *, rules: RulesManager,
                 clock: Callable[[], dt.datetime]) -> None:
        self.store = store
        self.state = FunnelState(store)
        self.engagement = EngagementStore(store)
        self.rules = rules
        self.now = clock

    async def record(self, lead_id: str | None, body: OutcomeIn) -> tuple[OutcomeReply, bool]:
        """Record ``body`` for ``lead_id`` (or the lead its external_id / email names);
        answers the reply and whether it recorded a new stage."""
        try:
            return await self._record(lead_id, body)
        except OutcomeError as exc:
            OUTCOMES.labels("not_found" if exc.status == 404 else "invalid").inc()
            raise

    async def _record(self, lead_id: str | None, body: OutcomeIn) -> tuple[OutcomeReply, bool]:
        spec = self.rules.current.funnel
        now = self.now()
        stage = _stage(spec, body.stage)
        at = body.at or now
        if at.tzinfo is None:
            raise OutcomeError(422, "Invalid time", "`at` needs a time zone — send e.g. "
                               "2026-03-02T09:00:00Z", field="at")
        if at > now + SKEW:
            raise OutcomeError(422, "Time in the future", f"`at` ({at.isoformat()}) is more "
                               f"than {int(SKEW.total_seconds() // 60)} minutes ahead of the "
                               "server's clock — send when the stage was reached (or leave it "
                               "out for now)", field="at")
        amount = parse_amount(body.amount)
        currency = parse_currency(body.currency) if amount is not None else ""
        if amount is None and body.currency:
            raise OutcomeError(422, "Currency without amount", "`currency` goes with `amount` "
                               "— send both, or neither", field="amount")
        target, routed = await self._lead(lead_id, body)
        result = await self.state.record(
            target, spec=spec, stage=stage, at=at, now=now, amount=amount, currency=currency,
            reason=(body.reason or "").strip(), outcome_id=body.outcome_id or "",
            routed_ms=routed)
        if result.status == "not_found":
            raise self._unknown(target)
        OUTCOMES.labels(result.status).inc()
        for counted in result.counted:
            FUNNEL_STAGES.labels(counted).inc()
        return self._reply(target, stage, result, spec), result.status == "recorded"

    @staticmethod
    def _reply(lead_id: str, stage: str, result: OutcomeResult,
               spec: FunnelSpec) -> OutcomeReply:
        outcome = result.outcome
        stages = {s: from_ms(outcome.stages[s]) for s in spec.stages if s in outcome.stages}
        return OutcomeReply(lead_id=lead_id, stage=stage, status=result.status,
                            counted=list(result.counted), stages=stages,
                            amount=outcome.amount, currency=outcome.currency,
                            reason=outcome.reason)

    @staticmethod
    def _unknown(lead_id: str) -> OutcomeError:
        return OutcomeError(404, "Lead not found", f"no lead {lead_id[:80]!r} (it may have "
                            "expired or been erased) — a CRM that does not keep our lead id "
                            "sends POST /v1/outcomes with its `external_id` (and `source`) or "
                            "the lead's `email`", field="lead_id", kind="lead-not-found")

    async def _lead(self, lead_id: str | None, body: OutcomeIn) -> tuple[str, int | None]:
        """The lead the outcome is for, and its routing time when it was read."""
        lead_id = lead_id or body.lead_id
        if lead_id:
            routed = await self.state.routed_at(lead_id)
            if routed is None:
                raise self._unknown(lead_id)
            return lead_id, routed
        if body.external_id:
            found = await self.engagement.lead_by_external_id(
                self._scopes(body.source), body.external_id)
            if found is None:
                raise OutcomeError(404, "Lead not found", f"no lead with external_id "
                                   f"{body.external_id[:80]!r}" + (
                                       f" from source {body.source!r}" if body.source else "")
                                   + " — check the id and `source` (the channel the lead came "
                                   "in through), or send our `lead_id` or the lead's `email`",
                                   field="external_id", kind="lead-not-found")
            return found, None
        if body.email:
            return await self._by_email(body.email), None
        raise OutcomeError(422, "Which lead?", "say which lead the outcome is for — send "
                           "`external_id` (and `source`) or `email`, or post to "
                           "/v1/leads/{lead_id}/outcome", field="external_id")

    async def _by_email(self, email: str) -> str:
        ids = await lead_ids_of(self.store, email)
        routed = await self.state.routed_many(ids)
        known = [(at, lead) for lead, at in routed.items() if at is not None]
        if not known:
            raise OutcomeError(404, "Lead not found", "no lead with that email (it may have "
                               "expired or been erased) — check the address, or send the "
                               "lead's `external_id` or our `lead_id`", field="email",
                               kind="lead-not-found")
        return max(known)[1]

    def _scopes(self, source: str | None) -> list[str]:
        """Where an external id's record may be: leads claim ``ext:<channel>:<lead source>``
        (router/services/leads.py); the API channel and every configured intake source."""
        if source:
            scopes = [f"ext:{source}:{source}", f"ext:api:{source}", f"ext:{source}:"]
        else:
            scopes = ["ext:api:"]
            intake: Any = getattr(self.rules.current, "intake", None)
            for name in sorted({s.source for s in getattr(intake, "sources", {}).values()}):
                scopes += [f"ext:{name}:{name}", f"ext:{name}:"]
        return list(dict.fromkeys(scopes))
