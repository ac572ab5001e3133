"""The HTTP API: thin litestar controllers over router/services.

Handlers get their services by dependency injection (typed parameters such as
``leads: LeadService``; router/app/services.py provides them) and decode bodies with
router/api/_body.py. :data:`ROUTE_HANDLERS` is every route, in the order the OpenAPI schema
lists them.
"""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from router.api import (
    accounts,
    actions,
    admin_keys,
    audit,
    calibration,
    console,
    events,
    forms,
    health,
    leads,
    lists,
    outcomes,
    owner,
    people,
    replay,
    reps,
    rules,
    shadow,
    sla,
    sources,
    status,
)

__all__ = ["ROUTE_HANDLERS"]

ROUTE_HANDLERS: list[ControllerRouterHandler] = [
    health.livez, health.readyz, rules.get_rules, rules.reload_rules, rules.evaluate_lead,
    replay.replay_rules, shadow.shadow_rules_report,
    *leads.handlers, *events.handlers, *reps.handlers, *accounts.handlers, *status.handlers,
    *forms.handlers, *sources.handlers, *admin_keys.handlers, *people.handlers,
    *owner.handlers, *sla.handlers, *audit.handlers, *calibration.handlers,
    *outcomes.handlers, *lists.handlers,
    *console.handlers,  # /ui (router/api/console), not in the schema
    *actions.handlers,  # /a/{token}: signed action links, not in the schema
]
