"""Every Prometheus metric of the service, defined in one place.

Naming follows Prometheus conventions: ``leadrouter_`` prefix, base units (seconds), ``_total``
on counters. Labels only ever carry bounded values: HTTP route *templates* (never raw paths),
methods, status codes, and identifiers an operator configured in the rule files (status, grade,
pool, queue, rule id, rep id). Never an email, a lead id, a request id or free text.

**Cheap on the hot path.** prometheus-client costs 2-4 µs per update in one process and 4-8 µs
in multiprocess mode (a lock and an mmap write each); a lead touches about ten series. So the
hot path updates *fast children* instead — plain attributes on a slotted object, ~0.1-0.3 µs —
and :func:`flush` moves what accumulated into the real prometheus-client metrics: every second
from a background task in each worker, right before ``/metrics`` renders, and at shutdown.
Prometheus scrapes every 15 s or so; a second of delay is invisible.

**Several workers.** ``leadrouter serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh
directory under the data dir (emptied at start, see ``router/app/serve.py``) before
any worker imports prometheus-client; each worker writes its own files and marks itself dead on
exit, and ``/metrics`` on any worker merges them all (:func:`render`). Values that are not per
process (the rules version, queue depths read from Redis) come from :class:`_ScrapeCollector`
at scrape time.

``python -m router.observability.metrics`` prints the metrics reference of ``docs/operations.md``.

This module defines the metrics and renders them; the fast children and their flush are
router/observability/_fast.py, the reference generator router/observability/_reference.py.
"""

from __future__ import annotations

import functools
import os
import platform
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from router import __version__
from router.observability._fast import (
    DEFINITIONS,
    LOCAL,
    Definition,
    FastCounter,
    FastHistogram,
    Kind,
    RoundTripSource,
)
from router.observability._fast import scrape_gauge as _scrape_gauge
from router.observability._reference import BEGIN, END, reference_markdown
from router.observability.funnel import FUNNEL_STAGES, OUTCOMES  # noqa: F401 (reference)

__all__ = [
    "BEGIN",
    "CONTENT_TYPE",
    "DEFINITIONS",
    "END",
    "LOCAL",
    "Definition",
    "FastCounter",
    "FastHistogram",
    "Kind",
    "RoundTripSource",
    "declare_sla_policies",
    "flush",
    "multiprocess_dir",
    "reference_markdown",
    "render",
]

# The classic text format (what generate_latest writes); litestar appends the charset.
CONTENT_TYPE = "text/plain; version=0.0.4"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The multiprocess directory this process writes to, or None (single-process mode).

    prometheus-client picks where values live once, when it is first imported: in files if
    ``PROMETHEUS_MULTIPROC_DIR`` was set then, else in memory. The exposition must read them
    from the same place, whatever the variable says now: a process that imported it before the
    variable was set (``leadrouter serve`` with one worker runs the app in its supervisor) keeps
    its values in memory, and reading the directory would show none of them."""
    if prometheus_client.values.ValueClass is prometheus_client.values.MutexValue:
        return None
    return os.environ.get(MULTIPROC_ENV) or None


# Latency buckets (seconds): the service answers in ~0.3 ms unloaded and should stay under
# 10 ms p99; anything past a second is an outage.
LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
FAST_LATENCY = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0)
SCORE = (-20, 0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 120, 150)

# -- HTTP (RED) ------------------------------------------------------------------------------

HTTP_REQUESTS = FastCounter(
    "leadrouter_http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"])
HTTP_DURATION = FastHistogram(
    "leadrouter_http_request_duration_seconds",
    "Time from request start to the end of the response, by method and route template.",
    ["method", "route"], buckets=LATENCY)

# -- leads and decisions ---------------------------------------------------------------------

LEADS_RECEIVED = FastCounter(
    "leadrouter_leads_received_total",
    "Leads taken in for routing, by intake source (api, batch, form, hubspot, segment).",
    ["source"])
LEAD_OUTCOMES = FastCounter(
    "leadrouter_lead_outcomes_total",
    "What became of a lead taken in: created (routed now), duplicate (idempotent replay), "
    "conflict (same key in flight), mismatch (key reused with another body), failed.",
    ["outcome"])
DECISIONS = FastCounter(
    "leadrouter_decisions_total",
    "Routing decisions committed, by status, grade, pool, queue and the assignment rule that "
    "matched (empty label when not applicable).",
    ["status", "grade", "pool", "queue", "rule"])
ASSIGNMENTS = FastCounter(
    "leadrouter_assignments_total",
    "Leads assigned to a rep, by pool (empty for account/owner routes) and owner rep id.",
    ["pool", "owner"])
SCORES = FastHistogram(
    "leadrouter_lead_score",
    "Total score of routed leads (points, as the rules define them).",
    buckets=SCORE, unit_note="points")
STAGE_DURATION = FastHistogram(
    "leadrouter_decision_stage_duration_seconds",
    "Time spent in each stage of routing one lead: prefetch (Redis read), evaluate (rules), "
    "commit (Redis pick-and-commit script).",
    ["stage"], buckets=FAST_LATENCY)

# -- Redis -----------------------------------------------------------------------------------

REDIS_DURATION = FastHistogram(
    "leadrouter_redis_operation_duration_seconds",
    "Latency of state-store operations (one Redis round trip each, a pipeline or a script), "
    "by operation.",
    ["operation"], buckets=FAST_LATENCY)
REDIS_ERRORS = FastCounter(
    "leadrouter_redis_errors_total",
    "State-store operations that failed, by operation and kind (unavailable: Redis unreachable "
    "or refusing; error: an unexpected reply).",
    ["operation", "kind"])
OPTIMISTIC_READS = FastCounter(
    "leadrouter_optimistic_reads_total",
    "Leads decided on guessed reads (LEADROUTER_OPTIMISTIC_READS), by whether the commit found "
    "the guess right or stale (decided again on what it found).",
    ["outcome"])
REDIS_ROUND_TRIPS = FastCounter(
    "leadrouter_redis_round_trips_total",
    "Network round trips to Redis (a pipeline or a script call is one).")
REDIS_FAILOVERS = FastCounter(
    "leadrouter_redis_failovers_total",
    "Times the connection moved to another primary: the sentinels named a new address, or the "
    "server answered READONLY/LOADING/MASTERDOWN and was reconnected; in cluster mode, the "
    "slot map named a new primary.")
REDIS_RECONNECTS = FastCounter(
    "leadrouter_redis_reconnects_total",
    "Connections to Redis made again after one was lost or refused (outages, failovers).")
REDIS_WAIT_TIMEOUTS = FastCounter(
    "leadrouter_redis_wait_timeouts_total",
    "Commits answered 503 because fewer replicas than LEADROUTER_REDIS_WAIT_REPLICAS "
    "confirmed them within LEADROUTER_REDIS_WAIT_TIMEOUT_MS (the lead is stored).")
REDIS_REDIRECTIONS = FastCounter(
    "leadrouter_redis_redirections_total",
    "MOVED or ASK replies followed in cluster mode (the deployment's slot moved: failover or "
    "resharding).")

# -- rules -----------------------------------------------------------------------------------

RULES_RELOADS = FastCounter(
    "leadrouter_rules_reloads_total",
    "Rules reload attempts by result (ok, rejected) and trigger (admin, file_change, "
    "generation).",
    ["result", "trigger"])

# -- shadow mode (LEADROUTER_SHADOW_RULES) ---------------------------------------------------

SHADOW_EVALUATIONS = FastCounter(
    "leadrouter_shadow_evaluations_total",
    "Live leads decided again by the shadow ruleset (LEADROUTER_SHADOW_RULES), off the "
    "request's path; nothing is acted on.")
SHADOW_DIVERGENCES = FastCounter(
    "leadrouter_shadow_divergences_total",
    "Shadow evaluations that differ from the live decision, by field: status, or pool (the "
    "pool the rules route to).",
    ["field"])
SHADOW_ERRORS = FastCounter(
    "leadrouter_shadow_errors_total",
    "Shadow ruleset failures, by stage: load (the files do not load), evaluate (deciding a "
    "lead raised), dropped (the shadow queue was full). Live routing is never affected.",
    ["stage"])

# -- SLA, recycling, engagement, plugins ------------------------------------------------------

SLA_STARTED = FastCounter(
    "leadrouter_sla_started_total",
    "Handoffs whose SLA clock started (a lead committed with a deadline), by SLA policy.",
    ["policy"])
SLA_BREACHES = FastCounter(
    "leadrouter_sla_breaches_total",
    "SLA deadlines missed, by SLA policy (counted by the SLA worker).",
    ["policy"])
SLA_REASSIGNMENTS = FastCounter(
    "leadrouter_sla_reassignments_total",
    "Leads reassigned after an SLA breach, by SLA policy.",
    ["policy"])
RECYCLES = FastCounter(
    "leadrouter_leads_recycled_total",
    "Leads rejected by their owner and recycled to nurture, by reason (one of the configured "
    "reasons, else 'other').",
    ["reason"])
EVENTS = FastCounter(
    "leadrouter_events_ingested_total",
    "Engagement events taken in, by outcome (stored, identified, duplicate).",
    ["outcome"])
PLUGIN_CALLS = FastCounter(
    "leadrouter_plugin_calls_total",
    "Plugin hook calls, by plugin and hook.", ["plugin", "hook"])
PLUGIN_ERRORS = FastCounter(
    "leadrouter_plugin_errors_total",
    "Plugin hook calls that raised, by plugin and hook.", ["plugin", "hook"])
PLUGIN_DURATION = FastHistogram(
    "leadrouter_plugin_duration_seconds",
    "Time spent in plugin hooks, by plugin and hook.", ["plugin", "hook"],
    buckets=FAST_LATENCY)
NOTIFICATIONS = FastCounter(
    "leadrouter_notifications_total",
    "Outbox events handed to a plugin's on_event, by channel (the plugin) and outcome: "
    "delivered, retried (failed, tried again later), dead (dead-lettered: refused for good "
    "or out of attempts).", ["channel", "outcome"])

# -- computed at scrape time -------------------------------------------------------------------

BUILD_INFO = _scrape_gauge(
    "leadrouter_build_info", "Always 1; the labels say which build is running.",
    ["version", "python_version"])
RULES_INFO = _scrape_gauge(
    "leadrouter_rules_info",
    "Always 1; the label is the version (sha256) of the ruleset the scraped worker serves.",
    ["version"])
RULES_LOADED = _scrape_gauge(
    "leadrouter_rules_loaded_timestamp_seconds",
    "Unix time the serving ruleset was loaded.")
RULES_LAST_RELOAD_OK = _scrape_gauge(
    "leadrouter_rules_last_reload_success",
    "1 if the last reload attempt was accepted (or none was made yet), 0 if it was rejected.")
START_TIME = _scrape_gauge(
    "leadrouter_start_time_seconds", "Unix time the scraped worker process started.")
WORKERS = _scrape_gauge(
    "leadrouter_workers", "Worker processes this instance was started with.")
REDIS_UP = _scrape_gauge(
    "leadrouter_redis_up", "1 if Redis answered the scrape-time read, else 0.")
SLA_PENDING = _scrape_gauge(
    "leadrouter_sla_pending_leads",
    "Leads with a running SLA clock (read from Redis: the same on every instance).")
SLA_OVERDUE = _scrape_gauge(
    "leadrouter_sla_overdue_leads",
    "Leads whose SLA deadline has passed and that were not yet handled (read from Redis).")
QUEUE_DEPTH = _scrape_gauge(
    "leadrouter_queue_leads",
    "Leads waiting in each queue the rules name, e.g. unassigned (read from Redis).",
    ["queue"])

# Counters an alert divides or rates exist from the start, at zero, for every label value
# known in advance: a series that appears only with its first increment hides that increment
# from rate(), and a ratio with a missing side is no ratio (see deploy/prometheus/alerts.yaml).
for _result in ("ok", "rejected"):
    for _trigger in ("admin", "file_change", "generation"):
        RULES_RELOADS.labels(_result, _trigger)


def declare_sla_policies(policies: Iterable[str]) -> None:
    """Zero series of the per-policy SLA counters for every policy the serving rules define
    (called when a ruleset is loaded)."""
    for policy in policies:
        for counter in (SLA_STARTED, SLA_BREACHES, SLA_REASSIGNMENTS):
            counter.labels(policy)


_FAST: list[FastCounter | FastHistogram] = [
    m for m in list(globals().values()) if isinstance(m, FastCounter | FastHistogram)]


ROUND_TRIP_SOURCE = RoundTripSource(REDIS_ROUND_TRIPS)
# The connection's own counters (router/state/wire.py), attached to ``store.wire``.
WIRE_SOURCES = (RoundTripSource(REDIS_FAILOVERS, "failovers"),
                RoundTripSource(REDIS_RECONNECTS, "reconnects"),
                RoundTripSource(REDIS_WAIT_TIMEOUTS, "wait_timeouts"),
                RoundTripSource(REDIS_REDIRECTIONS, "redirections"))


def attach_store(store: Any) -> None:
    """Feed the store's and its connection's plain counters into the metrics at each flush."""
    ROUND_TRIP_SOURCE.attach(store)
    for source in WIRE_SOURCES:
        source.attach(store.wire)


def flush() -> None:
    """Move what the fast children accumulated into prometheus-client (see the module doc)."""
    ROUND_TRIP_SOURCE._flush()
    for source in WIRE_SOURCES:
        source._flush()
    for metric in _FAST:
        metric._flush()


# -- exposition ------------------------------------------------------------------------------


class ScrapeValues:
    """What the scrape-time gauges report; set by the ``/metrics`` handler before rendering."""

    def __init__(self) -> None:
        self.started = time.time()
        self.rules_version: str | None = None
        self.rules_loaded_at: float | None = None
        self.last_reload_ok = True
        self.workers = 1
        self.redis_up: bool | None = None
        self.sla_pending: int | None = None
        self.sla_overdue: int | None = None
        self.queues: dict[str, int] = {}


class _ScrapeCollector(Collector):
    def __init__(self, values: ScrapeValues) -> None:
        self.values = values

    def collect(self) -> Iterator[Metric]:
        v = self.values
        yield _gauge(BUILD_INFO, [((__version__, platform.python_version()), 1)])
        if v.rules_version is not None:
            yield _gauge(RULES_INFO, [((v.rules_version,), 1)])
        if v.rules_loaded_at is not None:
            yield _gauge(RULES_LOADED, [((), v.rules_loaded_at)])
        yield _gauge(RULES_LAST_RELOAD_OK, [((), 1 if v.last_reload_ok else 0)])
        yield _gauge(START_TIME, [((), v.started)])
        yield _gauge(WORKERS, [((), v.workers)])
        if v.redis_up is not None:
            yield _gauge(REDIS_UP, [((), 1 if v.redis_up else 0)])
        if v.sla_pending is not None:
            yield _gauge(SLA_PENDING, [((), v.sla_pending)])
        if v.sla_overdue is not None:
            yield _gauge(SLA_OVERDUE, [((), v.sla_overdue)])
        if v.queues:
            yield _gauge(QUEUE_DEPTH, [((q,), n) for q, n in sorted(v.queues.items())])


def _gauge(d: Definition, samples: Iterable[tuple[tuple[str, ...], float]]) -> Metric:
    family = GaugeMetricFamily(d.name, d.doc, labels=d.labels)
    for labels, value in samples:
        family.add_metric(list(labels), value)
    return family


SCRAPE = ScrapeValues()


def exposition_registry() -> CollectorRegistry:
    """The registry ``/metrics`` renders: every worker's files in multiprocess mode, else
    this process's metrics; plus the scrape-time gauges."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = CollectorRegistry()
        registry.register(_LocalCollector())
    registry.register(_ScrapeCollector(SCRAPE))
    return registry


class _LocalCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from LOCAL.collect()


@functools.cache
def _exposition() -> CollectorRegistry:
    return exposition_registry()


def render() -> bytes:
    """Flush, then the text exposition format of every metric."""
    flush()
    return prometheus_client.generate_latest(_exposition())


def sample_value(name: str, labels: dict[str, str] | None = None) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels`` (tests, status)."""
    flush()
    total = 0.0
    for family in _exposition().collect():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v
                                           for k, v in (labels or {}).items()):
                total += sample.value
    return total


def mark_process_dead(pid: int | None = None) -> None:
    """Flush and tell the multiprocess collector this worker is gone (live gauges drop)."""
    flush()
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(reference_markdown() + "\n")
