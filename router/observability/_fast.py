"""The fast children behind every metric of router/observability/metrics.py, and their flush.

prometheus-client costs 2-4 µs per update in one process and 4-8 µs in multiprocess mode (a lock
and an mmap write each), and a lead touches about ten series. So the hot path updates plain
attributes on slotted objects (~0.1-0.3 µs), and ``_flush()`` moves what accumulated into the
real prometheus-client metric, which lives in :data:`LOCAL`. Each metric also records its
:class:`Definition`, for the exposition and the docs reference.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any, Generic, Literal, TypeVar

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["DEFINITIONS", "LOCAL", "Definition", "FastCounter", "FastHistogram", "Kind",
           "RoundTripSource", "scrape_gauge"]

# No `_created` series: before the first metric is made, for every registry of the process.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

# Metrics live in their own registry (not prometheus-client's global one) so that importing the
# module twice in tests, or a library registering its own metrics, cannot collide.
LOCAL = CollectorRegistry(auto_describe=True)

Kind = Literal["counter", "histogram", "gauge"]


class Definition:
    """One metric: what the reference documents and what ``metrics.render()`` exposes."""

    def __init__(self, name: str, kind: Kind, doc: str, labels: Sequence[str],
                 *, unit_note: str = "", source: str = "") -> None:
        self.name = name
        self.kind = kind
        self.doc = doc
        self.labels = tuple(labels)
        self.unit_note = unit_note
        self.source = source  # "scrape": computed when /metrics is read, not accumulated


DEFINITIONS: list[Definition] = []


class _CounterChild:
    __slots__ = ("pending", "real")

    def __init__(self, real: Any) -> None:
        self.pending = 0.0
        self.real = real

    def inc(self, amount: float = 1.0) -> None:
        self.pending += amount

    def _flush(self) -> None:
        pending = self.pending
        if pending:
            self.pending = 0.0
            self.real.inc(pending)


class _HistogramChild:
    __slots__ = ("bounds", "counts", "real", "sum")

    def __init__(self, bounds: tuple[float, ...], real: Any) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # last: above the highest finite bound (+Inf)
        self.sum = 0.0
        self.real = real

    def observe(self, value: float) -> None:
        # bisect_left: the first bound >= value, i.e. Prometheus' "le" semantics.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def _flush(self) -> None:
        counts = self.counts
        if not any(counts):
            return
        self.counts = [0] * len(counts)
        total, self.sum = self.sum, 0.0
        # prometheus-client keeps one (non-cumulative) value per bucket plus the sum; adding to
        # them is exactly what len(observations) calls of observe() would have done. Guarded by
        # tests/observability/test_metrics.py against a prometheus-client upgrade changing
        # the layout.
        buckets = self.real._buckets
        for i, n in enumerate(counts):
            if n:
                buckets[i].inc(n)
        self.real._sum.inc(total)


_Child = TypeVar("_Child", _CounterChild, _HistogramChild)


class _Family(Generic[_Child]):
    """What a fast counter and a fast histogram share: the definition (recorded once), one
    child per label values made on first use (``_child`` wraps the real one), the unlabelled
    child of a metric without labels, and the flush of every child."""

    def __init__(self, definition: Definition, real: Any) -> None:
        self.definition = definition
        DEFINITIONS.append(definition)
        self.real = real
        self.children: dict[tuple[str, ...], _Child] = {}
        self._unlabelled: _Child | None = None if definition.labels else self.labels()

    def _child(self, real: Any) -> _Child:
        raise NotImplementedError

    def labels(self, *values: str) -> _Child:
        child = self.children.get(values)
        if child is None:
            real = self.real.labels(*values) if values else self.real
            child = self.children[values] = self._child(real)
        return child

    def _flush(self) -> None:
        for child in self.children.values():
            child._flush()


class FastCounter(_Family[_CounterChild]):
    """A counter whose hot-path ``inc`` is a Python attribute update; see the module doc."""

    def __init__(self, name: str, doc: str, labels: Sequence[str] = ()) -> None:
        if not name.endswith("_total"):
            raise ValueError(f"counter {name} must end in _total")
        # prometheus-client appends _total itself.
        super().__init__(Definition(name, "counter", doc, labels),
                         Counter(name[: -len("_total")], doc, labels, registry=LOCAL))

    def _child(self, real: Any) -> _CounterChild:
        return _CounterChild(real)

    def inc(self, amount: float = 1.0) -> None:
        assert self._unlabelled is not None, f"{self.definition.name} has labels"
        self._unlabelled.pending += amount


class FastHistogram(_Family[_HistogramChild]):
    """A histogram whose hot-path ``observe`` is a bisect and two list/attribute updates."""

    def __init__(self, name: str, doc: str, labels: Sequence[str] = (), *,
                 buckets: Sequence[float], unit_note: str = "") -> None:
        self.bounds = tuple(float(b) for b in buckets)
        super().__init__(Definition(name, "histogram", doc, labels, unit_note=unit_note),
                         Histogram(name, doc, labels, registry=LOCAL, buckets=self.bounds))

    def _child(self, real: Any) -> _HistogramChild:
        return _HistogramChild(self.bounds, real)

    def observe(self, value: float) -> None:
        assert self._unlabelled is not None, f"{self.definition.name} has labels"
        self._unlabelled.observe(value)


def scrape_gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Definition:
    definition = Definition(name, "gauge", doc, labels, source="scrape")
    DEFINITIONS.append(definition)
    return definition


# Latency buckets (seconds): the service answers in ~0.3 ms unloaded and should stay under
# 10 ms p99; anything past a second is an outage.

class RoundTripSource:
    """Moves a plain counter attribute of an object (the store's ``round_trips``, the
    connection's ``failovers``...) into ``counter`` at every flush."""

    def __init__(self, counter: FastCounter, attr: str = "round_trips") -> None:
        self.counter = counter
        self.attr = attr
        self.store: Any = None
        self.seen = 0

    def attach(self, store: Any) -> None:
        self.store = store
        self.seen = int(getattr(store, self.attr))

    def _flush(self) -> None:
        if self.store is not None:
            now = int(getattr(self.store, self.attr))
            if now > self.seen:
                self.counter.inc(now - self.seen)
            self.seen = now
