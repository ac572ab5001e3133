"""router/services/shadow.py on real Valkey: a shadow ruleset that raises while deciding is
counted and logged and live routing is unaffected; the shadow directory hot-reloads and each
version's period is recorded (router/state/shadow.py) with its files; the report's window runs
from a version's start to the next version's."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest
from _rules import SERVICE_RULES
from _service import write_rules
from leadrouter_sdk import Lead

from router.engine.ruleset import Ruleset
from router.observability import metrics
from router.services.leads import LeadService
from router.services.replay import ReplayService
from router.services.rules import RulesManager
from router.services.shadow import NoShadow, ShadowService, shadow_report, window_of
from router.settings import Settings
from router.state.models import from_ms, to_ms
from router.state.shadow import ShadowPeriod, shadow_files, shadow_periods
from router.state.store import Store

pytestmark = pytest.mark.anyio

T0 = dt.datetime(2026, 3, 3, 15, 0, tzinfo=dt.UTC)
SQL_AT_50 = SERVICE_RULES["scoring.yaml"].replace('"score >= 80"', '"score >= 50"')


class _Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


def _errors(stage: str) -> float:
    return metrics.sample_value("leadrouter_shadow_errors_total", {"stage": stage})


def _evaluations() -> float:
    return metrics.sample_value("leadrouter_shadow_evaluations_total")


def _raising(ruleset: Ruleset) -> Any:
    def evaluate(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the shadow engine broke")

    return evaluate


async def _live(store: Store, tmp_path: Path, clock: _Clock,
                shadow: ShadowService) -> LeadService:
    manager = RulesManager(write_rules(tmp_path / "live"), require_tests=False)
    manager.load_initial()
    leads = LeadService(store=store, rules=manager, settings=Settings(), clock=clock)
    leads.shadow = shadow.submit
    await shadow.attach(store)
    return leads


async def test_an_exception_in_shadow_evaluation_is_counted_logged_and_live_unaffected(
        store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = _Clock()
    shadow = ShadowService(write_rules(tmp_path / "shadow", {"scoring.yaml": SQL_AT_50}),
                           clock=clock, evaluator=_raising)
    assert shadow.load()
    leads = await _live(store, tmp_path, clock, shadow)
    errors, evaluations = _errors("evaluate"), _evaluations()
    answers = []
    for i in range(5):
        clock.now += dt.timedelta(minutes=1)
        answers.append(await leads.route(Lead(email=f"p{i}@big.example", employees=5000,
                                              country="US", budget=100000)))
    with caplog.at_level(logging.WARNING, logger="leadrouter.shadow"):
        assert await shadow.drain() == 5
    assert [(a[0], a[1].status if a[1] else None) for a in answers] == [("created", "mql")] * 5
    assert _errors("evaluate") - errors == 5
    assert _evaluations() == evaluations
    logged = [r for r in caplog.records if "raised while evaluating" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info  # once per version, with the traceback


async def test_shadow_hot_reload_records_each_version_and_its_period(
        store: Store, tmp_path: Path) -> None:
    clock = _Clock()
    directory = write_rules(tmp_path / "shadow", {"scoring.yaml": SQL_AT_50})
    shadow = ShadowService(directory, clock=clock)
    assert shadow.load()
    first = shadow.current
    assert first is not None
    leads = await _live(store, tmp_path, clock, shadow)
    clock.now += dt.timedelta(minutes=1)
    await leads.route(Lead(email="a@big.example", employees=5000, country="US", budget=1e5))
    await shadow.drain()
    # the files change: the poll after the one that saw it loads the new version, once the
    # files have stayed the same between two polls (a broken save keeps the old one)
    (directory / "scoring.yaml").write_text("scoring: [")  # caught mid-save by a poll...
    load_errors = _errors("load")
    shadow.poll()
    (directory / "scoring.yaml").write_text("scoring: [oops\n")  # ...but saved broken
    shadow.poll()
    assert shadow.current is first and _errors("load") == load_errors  # not loaded half-way
    shadow.poll()
    assert shadow.current is first and _errors("load") - load_errors == 1
    shadow.poll()
    assert _errors("load") - load_errors == 1  # a failed load is not retried until a change
    (directory / "scoring.yaml").write_text(SERVICE_RULES["scoring.yaml"])
    clock.now += dt.timedelta(minutes=1)
    shadow.poll()
    assert shadow.current is first
    shadow.poll()
    second = shadow.current
    assert second is not None and second.version != first.version
    await shadow.drain()
    await shadow._record()
    clock.now += dt.timedelta(minutes=1)
    await leads.route(Lead(email="b@big.example", employees=5000, country="US", budget=1e5))
    await shadow.drain()
    periods = {p.version: p for p in await shadow_periods(store)}
    assert set(periods) == {first.version, second.version}
    assert periods[first.version].start_ms == to_ms(T0)
    assert periods[second.version].start_ms == to_ms(T0 + dt.timedelta(minutes=2))
    assert periods[second.version].last_ms == to_ms(T0 + dt.timedelta(minutes=3))
    files = await shadow_files(store, first.version)
    assert files is not None and files["scoring.yaml"] == SQL_AT_50
    replay = ReplayService(store)
    # the first version's period ends where the second starts: the first lead only
    report = await shadow_report(store, replay, version=first.version[:10])
    assert (report.replayed, report.changed, report.candidate_version) == (1, 1, first.version)
    latest = await shadow_report(store, replay)  # the latest: the live rules again
    assert (latest.replayed, latest.changed) == (1, 0)


def test_the_window_of_a_version() -> None:
    a = ShadowPeriod(version="a" * 64, start_ms=1000, last_ms=5000)
    b = ShadowPeriod(version="b" * 64, start_ms=6000, last_ms=9000)
    assert window_of([b, a], "aaaaaaa", None).until == from_ms(5999)
    assert window_of([a, b], None, None).until == from_ms(9000)  # not shadowed any more
    assert window_of([a, b], None, "b" * 64).until is None  # still shadowing: up to now
    with pytest.raises(NoShadow, match="LEADROUTER_SHADOW_RULES"):
        window_of([], None, None)
    with pytest.raises(NoShadow, match="7\\+ characters"):
        window_of([a, b], "cccccccc", None)


async def test_a_full_queue_drops_and_counts_instead_of_growing(store: Store,
                                                                tmp_path: Path) -> None:
    clock = _Clock()
    shadow = ShadowService(write_rules(tmp_path / "shadow", {"scoring.yaml": SQL_AT_50}),
                           clock=clock, max_queue=2)
    assert shadow.load()
    leads = await _live(store, tmp_path, clock, shadow)
    dropped, evaluations = _errors("dropped"), _evaluations()
    for i in range(3):
        clock.now += dt.timedelta(minutes=1)
        answer = await leads.route(Lead(email=f"q{i}@big.example", employees=5000))
        assert answer[0] == "created"
    assert _errors("dropped") - dropped == 1
    assert await shadow.drain() == 2
    assert _evaluations() - evaluations == 2
