"""leadrouter: lead scoring and routing service."""

__version__ = "0.1.0"
