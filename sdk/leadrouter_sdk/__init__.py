"""Public types, hookspecs and testing helpers for leadrouter plugins."""

__version__ = "0.1.0"
