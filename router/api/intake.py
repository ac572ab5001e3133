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
from router.intake.policy import missing_contact, repeat_of
from router.services.leads import LeadService
from router.services.rules import RulesManager
from router.settings import Settings

__all__ = ["changed_problem", "contact_problem", "intake_config", "intake_problem", "limits_of",
           "route_lead"]


def intake_problem(exc: IntakeError) -> ProblemDetailsException:
    extra: dict[str, Any] = {}
    if exc.field:
        extra["errors"] = [{"path": exc.field, "message": exc.detail}]
        extra["field"] = exc.field
    return problem(exc.status, exc.title, exc.detail, kind=exc.kind,
                   headers=exc.headers or None, **extra)


def contact_error(missing: tuple[str, ...]) -> IntakeError:
    """422 for a lead with none of the fields ``leads.require_any_of`` names."""
    names = ", ".join(f"`{name}`" for name in missing)
    return IntakeError(422, "No way to reach the lead", f"the lead has none of {names} — send "
                       "at least one of them (which fields count: `leads: {require_any_of: "
                       "[...]}` in rules/intake.yaml)", field=missing[0],
                       kind="contact-required")


def contact_problem(missing: tuple[str, ...], prefix: str = "$") -> ProblemDetailsException:
    """:func:`contact_error` as ``POST /v1/leads`` answers it: every field under ``prefix``."""
    exc = contact_error(missing)
    return problem(422, exc.title, exc.detail, kind=exc.kind, fields=list(missing),
                   errors=[{"path": f"{prefix}.{name}", "message": "missing"}
                           for name in missing])


def changed_error(lead: Lead, lead_id: str) -> IntakeError:
    """422 for an ``external_id`` already routed, sent again with different data."""
    return IntakeError(
        422, "external_id reused with other data",
        f"external_id {lead.external_id!r} (source {lead.source!r}) was already routed as "
        f"lead {lead_id} with different data — send the same data again to get that decision, "
        "a new external_id for a new lead, or set `leads: {external_id_repeat: update}` "
        "(the lead takes the new data) or `duplicate` (repeats get the first decision) in "
        "rules/intake.yaml",
        field="external_id", kind="idempotency-mismatch")


def changed_problem(lead: Lead, lead_id: str) -> ProblemDetailsException:
    exc = changed_error(lead, lead_id)
    return problem(422, exc.title, exc.detail, kind=exc.kind, lead_id=lead_id,
                   field="external_id")


def intake_config(rules: RulesManager) -> IntakeConfig:
    """The forms and sources of the current rules (rules/intake.yaml), or none."""
    intake = rules.current.intake
    return intake if isinstance(intake, IntakeConfig) else EMPTY


def limits_of(settings: Settings) -> Limits:
    return Limits(max_fields=settings.max_fields, max_value_chars=settings.max_field_chars)


async def route_lead(leads: LeadService, lead: Lead, *, body: bytes, source: str,
                     key: str | None, retry_after: int,
                     spam: str | None = None) -> tuple[int, str, Any]:
    """Route one lead: (201 created | 200 duplicate or update, lead id, decision). A lead
    nobody can reach is refused (422, ``leads.require_any_of``) unless it is spam, stored
    unrouted. A known external_id with other data: the source's ``external_id_repeat``."""
    intake = intake_config(leads.rules)
    missing = missing_contact(lead, intake.leads) if spam is None else ()
    if missing:
        raise contact_error(missing)
    channel = next((s for s in intake.sources.values() if s.source == source), None)
    repeat = None if channel is None else repeat_of(
        intake.leads, own=channel.external_id_repeat, kind=channel.type)
    outcome, decision, ref = await leads.route(
        lead, body=body, source=source, idempotency_key=key, spam=spam, repeat=repeat)
    if outcome == "created":
        return 201, ref, decision
    if outcome in ("duplicate", "updated") and decision is not None:
        return 200, ref, decision
    if outcome == "mismatch":
        raise IntakeError(422, "Idempotency key reused", "this idempotency key was already used "
                          "with a different body — use a new key for a new lead",
                          kind="idempotency-mismatch")
    if outcome == "changed":
        raise changed_error(lead, ref)
    raise IntakeError(409, "Request in progress", "the same lead is being processed — retry "
                      "shortly", kind="idempotency-in-flight",
                      headers={"Retry-After": str(retry_after)})
