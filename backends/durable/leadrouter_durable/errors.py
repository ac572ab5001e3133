"""What the durable-rules backend raises.

The two refusals are :class:`router.engine.BackendRefused`: the rules service turns them into a
rejected ruleset with the reason (the running ruleset keeps serving) instead of a crash.
"""

from __future__ import annotations

from router.engine import BackendRefused

__all__ = ["DurableError", "DurableUnavailable", "DurableUnsupported"]


class DurableUnavailable(BackendRefused, RuntimeError):
    """durable-rules is not installed, or its C extension does not load on this Python."""


class DurableUnsupported(BackendRefused, ValueError):
    """Rules the durable-rules backend cannot run; ``problems`` names each one and why."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("the durable-rules engine cannot run these rules (use the compiled "
                         "engine, or rewrite them):\n" + "\n".join(f"  - {p}" for p in problems))


class DurableError(RuntimeError):
    """durable-rules failed on a lead, or a value does not have the kind its field declares."""
