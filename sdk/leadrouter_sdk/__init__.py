"""Public types, hookspecs and testing helpers for leadrouter plugins."""

from leadrouter_sdk._lead import AttributeValue, Lead, decode_lead, lead_from_mapping

__version__ = "0.1.0"

__all__ = ["AttributeValue", "Lead", "__version__", "decode_lead", "lead_from_mapping"]
