"""Metrics wiring that needs the service's own types: the timed store, scrape-time values.

:class:`InstrumentedStore` is the :class:`~router.state.store.Store` the service connects with:
every public operation is timed (``leadrouter_redis_operation_duration_seconds{operation}``) and
its failures counted (``leadrouter_redis_errors_total``), with no change to the state layer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, ParamSpec, TypeVar

from router.engine.ruleset import Ruleset
from router.observability import metrics
from router.state.errors import StateError, StateUnavailable
from router.state.stats import backlog
from router.state.store import Store

__all__ = ["InstrumentedStore", "queues_of", "refresh_scrape_values"]

P = ParamSpec("P")
R = TypeVar("R")
_perf = time.perf_counter


def _timed(operation: str,
           method: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    duration = metrics.REDIS_DURATION.labels(operation)
    unavailable = metrics.REDIS_ERRORS.labels(operation, "unavailable")
    error = metrics.REDIS_ERRORS.labels(operation, "error")

    @functools.wraps(method)
    async def timed(*args: P.args, **kwargs: P.kwargs) -> R:
        start = _perf()
        try:
            return await method(*args, **kwargs)
        except StateUnavailable:
            unavailable.inc()
            raise
        except StateError:
            error.inc()
            raise
        finally:
            duration.observe(_perf() - start)

    return timed


class InstrumentedStore(Store):
    """A Store whose operations feed the Redis metrics (create with ``connect``)."""

    load_scripts = _timed("load_scripts", Store.load_scripts)
    ping = _timed("ping", Store.ping)
    prefetch = _timed("prefetch", Store.prefetch)
    release = _timed("release", Store.release)
    commit = _timed("commit", Store.commit)
    get_lead = _timed("get_lead", Store.get_lead)
    transition = _timed("transition", Store.transition)
    put_rep = _timed("put_rep", Store.put_rep)
    get_rep = _timed("get_rep", Store.get_rep)
    pool_stats = _timed("pool_stats", Store.pool_stats)
    put_account = _timed("put_account", Store.put_account)
    get_account = _timed("get_account", Store.get_account)
    delete_account = _timed("delete_account", Store.delete_account)


def queues_of(ruleset: Ruleset) -> set[str]:
    """Every queue the rules can send a lead to (assignment targets, pool overflows), plus
    ``unassigned``, the default."""
    names = {"unassigned"}
    for rule in ruleset.assignment.rules:
        if rule.route is not None and rule.route.kind == "queue" and rule.route.target:
            names.add(rule.route.target)
    for pool in ruleset.pools.values():
        if pool.overflow_kind == "queue" and pool.overflow:
            names.add(pool.overflow)
    return names


_timed_backlog = _timed("backlog", backlog)


async def refresh_scrape_values(*, ruleset: Ruleset | None, loaded_at: dt.datetime | None,
                                last_reload_ok: bool, workers: int, store: Store | None,
                                now: dt.datetime, timeout: float = 1.0) -> None:
    """Fill :data:`router.observability.metrics.SCRAPE` for this scrape: rules, workers, and the
    Redis-side backlog (SLA clocks running, queue depths) in one bounded round trip.

    ``ruleset`` is None until the rules are loaded (the rules values then keep what they were),
    ``store`` None until the store is connected (Redis is then reported down). The caller
    passes plain values, not itself: this layer sits beside the services and must not reach
    into them.
    """
    values = metrics.SCRAPE
    values.workers = workers
    if ruleset is not None:
        values.rules_version = ruleset.version
        values.rules_loaded_at = loaded_at.timestamp() if loaded_at else None
        values.last_reload_ok = last_reload_ok
    if store is None:
        values.redis_up = False
        return
    queues: Iterable[str] = queues_of(ruleset) if ruleset is not None else ("unassigned",)
    try:
        async with asyncio.timeout(timeout):
            result = await _timed_backlog(store, queues, now)
    except (StateError, TimeoutError):
        values.redis_up = False
        values.sla_pending = values.sla_overdue = None
        values.queues = {}
        return
    values.redis_up = True
    values.sla_pending = result.sla_pending
    values.sla_overdue = result.sla_overdue
    values.queues = result.queues
