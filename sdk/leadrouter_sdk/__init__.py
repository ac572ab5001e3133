"""Public types, hookspecs and testing helpers for leadrouter plugins."""

from leadrouter_sdk._decision import (
    Assignment,
    Contribution,
    Decision,
    HistoryEntry,
    Score,
    Sla,
    Step,
)
from leadrouter_sdk._lead import AttributeValue, Lead, decode_lead, lead_from_mapping
from leadrouter_sdk.hookspecs import (
    Event,
    ExpressionFunction,
    HookSpecs,
    PermanentDeliveryError,
    PluginDisabled,
    RouteOverride,
    RouteProposal,
    ScoreContext,
    ValueType,
    hookimpl,
)

__version__ = "0.1.0"

__all__ = [
    "Assignment",
    "AttributeValue",
    "Contribution",
    "Decision",
    "Event",
    "ExpressionFunction",
    "HistoryEntry",
    "HookSpecs",
    "Lead",
    "PermanentDeliveryError",
    "PluginDisabled",
    "RouteOverride",
    "RouteProposal",
    "Score",
    "ScoreContext",
    "Sla",
    "Step",
    "ValueType",
    "__version__",
    "decode_lead",
    "hookimpl",
    "lead_from_mapping",
]
