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

__version__ = "0.1.0"

__all__ = [
    "Assignment",
    "AttributeValue",
    "Contribution",
    "Decision",
    "HistoryEntry",
    "Lead",
    "Score",
    "Sla",
    "Step",
    "__version__",
    "decode_lead",
    "lead_from_mapping",
]
