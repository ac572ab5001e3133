"""The durable-rules C extension: importing it, and the one lock every call into it takes.

durable-rules' last release is from 2020 and its C extension does not import on Python >= 3.13,
so it is imported on first use and :func:`durable_unavailable` says why it cannot be used.
"""

from __future__ import annotations

import functools
import importlib
import threading
from typing import Any

from leadrouter_durable.errors import DurableUnavailable

__all__ = ["LOCK", "delete_rulesets", "durable_unavailable", "native"]

# durable-rules keeps every ruleset in one global handle table and is not thread-safe: one
# (re-entrant: a finalizer may run during a call) lock for every call into it
LOCK = threading.RLock()


@functools.cache
def _load() -> tuple[Any, str | None]:
    try:
        module = importlib.import_module("durable_rules_engine")
    except ImportError as exc:  # not installed, or the C extension fails to link (>= 3.13)
        return None, (f"durable-rules is not available ({exc}); it needs Python < 3.13, where "
                      "installing `leadrouter-durable` installs it — or set "
                      "LEADROUTER_ENGINE=compiled")
    return module, None


def durable_unavailable() -> str | None:
    """Why durable-rules cannot be used here, or None when it can."""
    return _load()[1]


def native() -> Any:
    """The durable-rules C extension; raises :class:`DurableUnavailable` saying why not."""
    module, reason = _load()
    if module is None:
        raise DurableUnavailable(reason)
    return module


def delete_rulesets(module: Any, handles: list[int]) -> None:
    """Free durable-rules rulesets (an engine's finalizer)."""
    with LOCK:
        for handle in handles:
            try:
                module.delete_ruleset(handle)
            except Exception:  # noqa: S112 - best effort at interpreter exit
                continue
        handles.clear()
