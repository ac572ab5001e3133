"""router/observability/instrument.py: the values read at scrape time (Redis reachable, SLA
backlog, queues), called directly on real Valkey and over real HTTP in /v1/status and
/metrics, and the timed store's error counts while Redis is down."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
import redis
from _ops import LEAD, InThreadService, free_port, metric_value, write_example_rules

from router.engine import Ruleset, load_directory
from router.observability import metrics
from router.observability.instrument import queues_of, refresh_scrape_values
from router.state.store import Store

NOW = dt.datetime(2024, 5, 6, 12, 0, tzinfo=dt.UTC)
LOADED_AT = dt.datetime(2024, 5, 6, 11, 0, tzinfo=dt.UTC)


@pytest.fixture
def scrape(monkeypatch: pytest.MonkeyPatch) -> metrics.ScrapeValues:
    """Fresh scrape values for this test: the process-wide ones are shared with every service
    the suite runs in a thread."""
    values = metrics.ScrapeValues()
    monkeypatch.setattr(metrics, "SCRAPE", values)
    return values


@pytest.fixture
def ruleset(tmp_path: Path) -> Ruleset:
    loaded: Ruleset = load_directory(write_example_rules(tmp_path / "rules"))
    return loaded


def _ms(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


def test_queues_of_are_the_rule_targets_and_pool_overflows_plus_unassigned(
        ruleset: Ruleset) -> None:
    assert queues_of(ruleset) == {"unassigned", "review", "nurture"}


@pytest.mark.anyio
async def test_refresh_reads_rules_workers_and_the_backlog(
        scrape: metrics.ScrapeValues, ruleset: Ruleset, store: Store,
        redis_client: redis.Redis) -> None:
    keys = store.keys
    redis_client.zadd(keys.sla_due, {"L1": _ms(NOW - dt.timedelta(minutes=5)),
                                     "L2": _ms(NOW + dt.timedelta(minutes=5))})
    redis_client.zadd(keys.queue("review"), {"L3": 1, "L4": 2})
    await refresh_scrape_values(ruleset=ruleset, loaded_at=LOADED_AT, last_reload_ok=False,
                                workers=3, store=store, now=NOW)
    assert scrape.workers == 3
    assert scrape.rules_version == ruleset.version
    assert scrape.rules_loaded_at == LOADED_AT.timestamp()
    assert scrape.last_reload_ok is False
    assert scrape.redis_up is True
    assert (scrape.sla_pending, scrape.sla_overdue) == (2, 1)  # L1 is past due at NOW
    assert scrape.queues == {"unassigned": 0, "review": 2, "nurture": 0}


@pytest.mark.anyio
async def test_refresh_before_the_rules_load_counts_the_default_queue_only(
        scrape: metrics.ScrapeValues, store: Store) -> None:
    await refresh_scrape_values(ruleset=None, loaded_at=None, last_reload_ok=False,
                                workers=2, store=store, now=NOW)
    # No ruleset yet: the rules values keep what they were, whatever else is passed.
    assert (scrape.rules_version, scrape.rules_loaded_at, scrape.last_reload_ok) == (
        None, None, True)
    assert scrape.workers == 2 and scrape.redis_up is True
    assert scrape.queues == {"unassigned": 0}


@pytest.mark.anyio
async def test_refresh_before_the_store_connects_reports_redis_down(
        scrape: metrics.ScrapeValues, ruleset: Ruleset) -> None:
    await refresh_scrape_values(ruleset=ruleset, loaded_at=None, last_reload_ok=True,
                                workers=1, store=None, now=NOW)
    assert scrape.redis_up is False
    assert scrape.rules_version == ruleset.version and scrape.rules_loaded_at is None


@pytest.mark.anyio
async def test_refresh_while_redis_is_down_clears_the_backlog(
        scrape: metrics.ScrapeValues, ruleset: Ruleset) -> None:
    scrape.redis_up, scrape.sla_pending, scrape.sla_overdue = True, 4, 1
    scrape.queues = {"unassigned": 7}
    gone = await Store.connect(f"redis://127.0.0.1:{free_port()}/0", verify=False)
    try:
        await refresh_scrape_values(ruleset=ruleset, loaded_at=LOADED_AT, last_reload_ok=True,
                                    workers=1, store=gone, now=NOW)
    finally:
        await gone.close()
    assert scrape.redis_up is False
    assert (scrape.sla_pending, scrape.sla_overdue, scrape.queues) == (None, None, {})


def test_status_summarises_the_instance(service: InThreadService) -> None:
    with httpx.Client(base_url=service.url, timeout=10) as client:
        assert client.post("/v1/leads", json=LEAD).status_code == 201
        body = client.get("/v1/status").json()
        rules = client.get("/v1/rules").json()
    assert body["version"] and body["workers"] == 3 and body["uptime_seconds"] >= 0
    assert body["rules"]["version"] == rules["version"]
    assert body["rules"]["loaded_at"] and body["rules"]["last_rejected"] is None
    assert body["redis"] == {"reachable": True, "embedded": False, "key_prefix": "lr:"}
    assert body["leads"]["routed"] >= 1
    assert body["backlog"]["sla_pending"] >= 1
    assert set(body["backlog"]["queues"]) >= {"unassigned", "review", "nurture"}


def test_metrics_and_status_answer_while_redis_is_down(tmp_path: Path) -> None:
    rules = write_example_rules(tmp_path / "rules")
    down = f"redis://127.0.0.1:{free_port()}/0"
    with InThreadService(redis_url=down, rules_dir=str(rules), reload_poll_seconds=0) as svc, \
            httpx.Client(base_url=svc.url, timeout=10) as client:
        assert client.get("/readyz").status_code == 503
        text = client.get("/metrics").text
        assert metric_value(text, "leadrouter_redis_up") == 0
        assert metric_value(text, "leadrouter_redis_errors_total", operation="backlog",
                            kind="unavailable") >= 1
        status = client.get("/v1/status").json()
        assert status["redis"]["reachable"] is False and "backlog" not in status
