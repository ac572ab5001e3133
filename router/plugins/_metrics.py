"""The Prometheus series plugin calls update (defined in ``router/observability/metrics.py``).

Looked up once, by name, so the plugin host keeps working (and keeps its own counters, see
``PluginHost.counts``) in a build without the metrics module.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["NULL_SERIES", "Series", "notifications", "series"]


class _Null:
    def labels(self, *values: str) -> _Null:
        return self

    def inc(self, amount: float = 1.0) -> None:
        pass

    def observe(self, value: float) -> None:
        pass


_NULL = _Null()


class Series:
    """The children of the plugin metrics for one (plugin, hook)."""

    __slots__ = ("calls", "duration", "errors")

    def __init__(self, calls: Any, errors: Any, duration: Any) -> None:
        self.calls = calls
        self.errors = errors
        self.duration = duration


NULL_SERIES = Series(_NULL, _NULL, _NULL)


def _metric(name: str) -> Any:
    try:
        module = importlib.import_module("router.observability.metrics")
    except ImportError:
        return _NULL
    return getattr(module, name, _NULL)


def series(plugin: str, hook: str) -> Series:
    return Series(_metric("PLUGIN_CALLS").labels(plugin, hook),
                  _metric("PLUGIN_ERRORS").labels(plugin, hook),
                  _metric("PLUGIN_DURATION").labels(plugin, hook))


OUTCOMES = ("delivered", "retried", "dead")


def notifications(plugin: str, metrics: bool = True) -> dict[str, Any]:
    """``leadrouter_notifications_total`` children of one sink, by outcome (the channel label
    is the plugin's name: never anything from the event)."""
    family = _metric("NOTIFICATIONS") if metrics else _NULL
    return {outcome: family.labels(plugin, outcome) for outcome in OUTCOMES}
