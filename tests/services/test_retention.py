"""Retention and size settings that bound Redis: ``LEADROUTER_ENGAGEMENT_RETENTION`` (the TTLs
Redis really applies to a person's engagement, its seen ids and aliases; the event-time horizon;
the warnings naming the rules whose windows it cuts) and ``LEADROUTER_OUTBOX_MAXLEN`` (the
outbox stream's length). Real Valkey, the real service over HTTP where the setting is wired."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from _service import AUTH

from router.engine import engagement as eng
from router.engine.engagement import DAY_MS
from router.engine.loader import load_directory
from router.services.retention import duration_text, warnings
from router.state.engagement import EngagementLimits, EngagementStore, email_person
from router.state.models import CommitPlan
from router.state.store import Store

HOUR_MS = 3_600_000
T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)


def test_limits_of_a_retention() -> None:
    assert EngagementLimits.retained(400 * DAY_MS) == EngagementLimits()  # today's behaviour
    short = EngagementLimits.retained(HOUR_MS)
    assert (short.ttl_ms, short.alias_ttl_ms, short.seen_ttl_ms, short.horizon_ms) == \
        (HOUR_MS,) * 4
    month = EngagementLimits.retained(30 * DAY_MS)
    assert (month.seen_ttl_ms, month.horizon_ms) == (2 * DAY_MS, 30 * DAY_MS)
    assert [duration_text(s) for s in (34_560_000, 7200, 90 * 60, 61)] == \
        ["400d", "2h", "90m", "61s"]


# --- what Redis applies ----------------------------------------------------------------------


def _ttls(client: redis.Redis) -> dict[str, list[int]]:
    """PTTL of every engagement key, by kind (person, seen, alias)."""
    out: dict[str, list[int]] = {"person": [], "seen": [], "alias": []}
    for key in client.scan_iter(match="lr:{lr}:eng:*"):
        name = key.decode()
        kind = "seen" if name.endswith(":seen") else "alias" if ":eng:alias:" in name \
            else "person"
        out[kind].append(int(client.pttl(key)))  # type: ignore[arg-type]
    return out


def _within(ttls: list[int], limit_ms: int) -> bool:
    return bool(ttls) and all(limit_ms - 60_000 < t <= limit_ms for t in ttls)


def test_the_ttls_redis_applies_follow_the_setting(start_service: Callable[..., Any],
                                                   redis_client: redis.Redis) -> None:
    server = start_service(engagement_retention=3600)
    with server.client() as api:
        # a lead links its person at commit (commit.lua) ...
        assert api.post("/v1/leads", json={"email": "pat@big.example",
                                           "employees": 5000}).status_code == 201
        assert _within(_ttls(redis_client)["person"], HOUR_MS)
        # ... an identify links an anonymous id to it (alias) and dedupes by messageId (seen),
        r = api.post("/v1/events", json={"type": "identify", "anonymousId": "anon-1",
                                         "traits": {"email": "pat@big.example"},
                                         "messageId": "m-1"})
        assert r.status_code == 202, r.text
        # ... and events write the person again (event.lua): every TTL is the hour.
        r = api.post("/v1/events", json={"email": "pat@big.example", "event": "demo_requested",
                                         "messageId": "m-2"})
        assert r.status_code == 202, r.text
        r = api.post("/v1/events", json={"anonymousId": "anon-2", "event": "page_viewed",
                                         "messageId": "m-3"})
        assert r.status_code == 202, r.text
    ttls = _ttls(redis_client)
    assert len(ttls["person"]) == 2 and len(ttls["alias"]) == 1 and len(ttls["seen"]) == 2
    assert all(_within(v, HOUR_MS) for v in ttls.values()), ttls


def test_the_default_keeps_engagement_400_days(start_service: Callable[..., Any],
                                               redis_client: redis.Redis) -> None:
    server = start_service()
    with server.client() as api:
        assert api.post("/v1/leads", json={"email": "kim@big.example"}).status_code == 201
        r = api.post("/v1/events", json={"email": "kim@big.example", "event": "demo_requested",
                                         "messageId": "m-1"})
        assert r.status_code == 202, r.text
    ttls = _ttls(redis_client)
    assert _within(ttls["person"], 400 * DAY_MS) and _within(ttls["seen"], 2 * DAY_MS), ttls


@pytest.fixture
async def store(redis_url: str) -> Any:
    s = await Store.connect(redis_url, retention=dt.timedelta(days=30), outbox_maxlen=1000)
    try:
        yield s
    finally:
        await s.close()


@pytest.mark.anyio
async def test_event_times_older_than_the_retention_are_not_kept(store: Store) -> None:
    now = eng.ms(T0)
    old, new = eng.from_ms(now - 5 * DAY_MS), T0
    kept: dict[str, tuple[int, ...]] = {}
    for name, limits in (("default", EngagementLimits()),
                         ("2 days", EngagementLimits.retained(2 * DAY_MS))):
        es = EngagementStore(store, limits)
        person = email_person(f"{name.replace(' ', '')}@x.example")
        for at in (old, new):
            await es.record(person, event="p", at=at, now=T0, message_id=None, types=["p"],
                            half_life_ms=14 * DAY_MS)
        state = await es.person(person, ["p"])
        assert state is not None
        activity = state.activity.types["p"]
        assert activity.n == 2
        kept[name] = activity.times
        if name == "2 days":  # the old one only survives in the decayed remainder
            assert activity.rem == pytest.approx(1.0) and activity.rem_at == now - 5 * DAY_MS
    assert kept == {"default": (now - 5 * DAY_MS, now), "2 days": (now,)}


# --- the warnings ------------------------------------------------------------------------------


def test_warnings_name_the_rules_whose_windows_are_cut(rules_dir: Path) -> None:
    ruleset = load_directory(rules_dir)
    assert warnings(ruleset, retention=30 * 86400, decision_retention=30 * 86400) == []
    found = warnings(ruleset, retention=7 * 86400, decision_retention=30 * 86400)
    assert len(found) == 2, found
    assert found[0].startswith("rule eng.demo (") and "scoring.yaml:" in found[0]
    assert "'demo_requested' over 30 days" in found[0]
    assert "LEADROUTER_ENGAGEMENT_RETENTION=7d" in found[0]
    assert "at least 30d" in found[0]
    assert "shorter than LEADROUTER_DECISION_RETENTION=30d" in found[1]


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def engagement_log() -> Iterator[list[str]]:
    """What ``leadrouter.engagement`` logs (its own handler: other tests may have configured
    the ``leadrouter`` logger not to propagate)."""
    logger = logging.getLogger("leadrouter.engagement")
    recorder, level = _Recorder(), logger.level
    logger.addHandler(recorder)
    logger.setLevel(logging.WARNING)
    try:
        yield recorder.messages
    finally:
        logger.removeHandler(recorder)
        logger.setLevel(level)


def test_the_service_warns_at_start_and_after_a_reload(start_service: Callable[..., Any],
                                                       rules_dir: Path,
                                                       engagement_log: list[str]) -> None:
    server = start_service(rules_dir=str(rules_dir), engagement_retention=10 * 86400,
                           decision_retention=86400)
    assert len(engagement_log) == 1 and "rule eng.demo (" in engagement_log[0]
    scoring = rules_dir / "scoring.yaml"
    scoring.write_text(scoring.read_text().replace(
        "  engagement:\n", "  engagement:\n    - {id: eng.webinar, when: "
        "'count(\"webinar_attended\", days=90) >= 1', points: 5}\n"))
    engagement_log.clear()
    with server.client() as api:
        assert api.post("/v1/admin/rules/reload", headers=AUTH).status_code == 200
    assert [m.split(" (")[0] for m in engagement_log] == [
        "engagement retention: rule eng.webinar", "engagement retention: rule eng.demo"]


# --- the outbox ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_outbox_keeps_about_maxlen_entries(store: Store,
                                                     redis_client: redis.Redis,
                                                     outbox_sink: str) -> None:
    decision = b'{"status":"nurture","explanation":"' + b"x" * 2000 + b'"}'
    for i in range(1300):
        await store.commit(CommitPlan(lead_id=f"ld_{i}", now=T0, kind="queue",
                                      decision=decision, queue="nurture"))
    length = redis_client.xlen(store.keys.outbox)
    assert 1000 <= length <= 1100, length  # MAXLEN ~ trims whole stream nodes


def test_the_service_passes_the_outbox_maxlen_on(start_service: Callable[..., Any]) -> None:
    server = start_service(outbox_maxlen=5000)
    ctx = server.server.config.app.state.services
    assert ctx.store.outbox_maxlen == 5000
    assert ctx.engagement.state.limits == EngagementLimits()
