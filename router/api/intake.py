"""Intake plumbing shared by the form and machine-source endpoints (router/api/forms.py,
router/api/sources.py): the intake configuration, field limits, routing one lead, and turning
an :class:`IntakeError` into an RFC 9457 problem that names the field."""

from __future__ import annotations

from typing import Any

from leadrouter_sdk import Lead
from litestar.plugins.problem_details import ProblemDetailsException

from router.api.errors import problem
from router.intake.config import EMPTY, IntakeConfig
from router.intake.mapping import IntakeError, Limits
from router.services.leads import LeadService
from router.services.rules import RulesManager
from router.settings import Settings

__all__ = ["intake_config", "intake_problem", "limits_of", "route_lead"]


def intake_problem(exc: IntakeError) -> ProblemDetailsException:
    extra: dict[str, Any] = {}
    if exc.field:
        extra["errors"] = [{"path": exc.field, "message": exc.detail}]
        extra["field"] = exc.field
    return problem(exc.status, exc.title, exc.detail, kind=exc.kind,
                   headers=exc.headers or None, **extra)


def intake_config(rules: RulesManager) -> IntakeConfig:
    """The forms and sources of the current rules (rules/intake.yaml), or none."""
    intake = rules.current.intake
    return intake if isinstance(intake, IntakeConfig) else EMPTY


def limits_of(settings: Settings) -> Limits:
    return Limits(max_fields=settings.max_fields, max_value_chars=settings.max_field_chars)


async def route_lead(leads: LeadService, lead: Lead, *, body: bytes, source: str,
                     key: str | None, retry_after: int,
                     spam: str | None = None) -> tuple[int, str, Any]:
    """Route one lead: (201 created | 200 duplicate, lead id, decision)."""
    outcome, decision, ref = await leads.route(
        lead, body=body, source=source, idempotency_key=key, spam=spam)
    if outcome == "created":
        return 201, ref, decision
    if outcome == "duplicate" and decision is not None:
        return 200, ref, decision
    if outcome == "mismatch":
        raise IntakeError(422, "Idempotency key reused", "this idempotency key was already used "
                          "with a different body — use a new key for a new lead",
                          kind="idempotency-mismatch")
    raise IntakeError(409, "Request in progress", "the same lead is being processed — retry "
                      "shortly", kind="idempotency-in-flight",
                      headers={"Retry-After": str(retry_after)})
