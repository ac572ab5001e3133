"""router/services/replay.py on real Valkey: the replay's own picks carry forward (owner changes
are consequences), versions not given are skipped, an empty window yields nothing, nothing is
written. Determinism over a few thousand leads: test_replay_determinism.py."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from _rules import SERVICE_RULES
from leadrouter_sdk import Lead

from router.engine.loader import load_texts
from router.engine.ruleset import Ruleset
from router.services.leads import LeadService
from router.services.replay import (
    NO_INPUT,
    NOT_GIVEN,
    UNREADABLE,
    ReplayService,
    backfill_at_start,
)
from router.services.replay_model import ReplayedLead, ReplayQuery, Skip
from router.services.rules import RulesManager
from router.settings import Settings
from router.state.inputs import backfill_arrivals
from router.state.models import CommitPlan, to_ms
from router.state.store import Store

pytestmark = pytest.mark.anyio

T0 = dt.datetime(2026, 3, 3, 15, 0, tzinfo=dt.UTC)


def _rules(tmp_path: Path) -> RulesManager:
    for name, text in SERVICE_RULES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    manager = RulesManager(tmp_path, require_tests=False)
    manager.load_initial()
    return manager


async def _route(store: Store, manager: RulesManager, n: int) -> list[str | None]:
    clock = [T0]
    service = LeadService(store=store, rules=manager, settings=Settings(),
                          clock=lambda: clock[0])
    owners = []
    for i in range(n):
        clock[0] += dt.timedelta(minutes=1)
        _, decision, _ = await service.route(Lead(email=f"p{i}@acme.example", country="US"),
                                             body=b"{}")
        assert decision is not None
        owners.append(decision.assignment.owner)
    return owners


async def test_a_member_leaving_changes_owners_as_its_consequence(store: Store,
                                                                   tmp_path: Path) -> None:
    manager = _rules(tmp_path / "live")
    assert await _route(store, manager, 9) == ["r1", "r2", "r3"] * 3
    files = {name: text for name, text in SERVICE_RULES.items() if "/" not in name}
    candidate: Ruleset = load_texts({**files, "routing.yaml": files["routing.yaml"].replace(
        "members: [r1, r2, r3]", "members: [r1, r2]")})
    before = await store.wire.call("DBSIZE")
    replay = ReplayService(store, batch=4)
    items = [i async for i in replay.run(candidate, ReplayQuery())]
    assert all(isinstance(i, ReplayedLead) for i in items)
    after = [i.after.owner for i in items if isinstance(i, ReplayedLead)]
    # The replay rotates over its own picks from the first divergence on: r1, r2 alternate
    # (taking the stored rotation at each lead instead would give r1 r2 r1 r1 r2 ...).
    assert after == ["r1", "r2"] * 4 + ["r1"]
    changed = [i for i in items if isinstance(i, ReplayedLead) and i.before != i.after]
    assert [(c.before.owner, c.after.owner) for c in changed] == [
        ("r3", "r1"), ("r1", "r2"), ("r2", "r1"), ("r3", "r2"), ("r3", "r1")]
    assert all(c.after.explanation and c.before.explanation for c in changed)
    unchanged = [i for i in items if isinstance(i, ReplayedLead) and i.before == i.after]
    assert all(i.after.explanation == () for i in unchanged)  # only changed leads pay for it
    assert await store.wire.call("DBSIZE") == before  # nothing written


async def test_versions_not_given_are_skipped_and_empty_windows_are_empty(
        store: Store, tmp_path: Path) -> None:
    manager = _rules(tmp_path / "live")
    await _route(store, manager, 3)
    replay = ReplayService(store)
    items = [i async for i in replay.run({"other": manager.current}, ReplayQuery())]
    assert [type(i) for i in items] == [Skip] * 3
    assert {i.reason for i in items if isinstance(i, Skip)} == {NOT_GIVEN}
    late = ReplayQuery(since=T0 + dt.timedelta(days=1))
    assert [i async for i in replay.run(manager.current, late)] == []
    window = ReplayQuery(since=T0 + dt.timedelta(minutes=2), until=T0 + dt.timedelta(minutes=3))
    got = [i async for i in replay.run(manager.current, window)]
    assert [i.created_at for i in got if isinstance(i, ReplayedLead)] == \
        [T0 + dt.timedelta(minutes=2), T0 + dt.timedelta(minutes=3)]


async def test_leads_from_before_inputs_were_kept_are_counted_as_skipped(
        store: Store, tmp_path: Path) -> None:
    manager = _rules(tmp_path / "live")
    # As the version before this one committed them: no input, no pick facts, no index entry.
    old = [f"ld_{to_ms(T0) + n:012x}{n:024x}" for n in range(4)]
    for lead_id in old:
        await store.commit(CommitPlan(lead_id=lead_id, now=T0, kind="queue", decision=b"{}",
                                      queue="q"))
    await _route(store, manager, 2)
    replay = ReplayService(store)
    assert len([i async for i in replay.run(manager.current, ReplayQuery())]) == 2
    assert await backfill_arrivals(store) == 4  # the one-off migration
    items = [i async for i in replay.run(manager.current, ReplayQuery())]
    assert [(i.lead_id, i.reason) for i in items if isinstance(i, Skip)] == \
        [(lead_id, NO_INPUT) for lead_id in old]
    assert sum(isinstance(i, ReplayedLead) and i.before == i.after for i in items) == 2
    # An input this version cannot read (damaged, or a later format): skipped, saying so.
    newest = items[-1].lead_id
    await store.wire.call("HSET", store.keys.lead(newest), "input", b"\xc1")
    items = [i async for i in replay.run(manager.current, ReplayQuery())]
    assert (items[-1].lead_id, getattr(items[-1], "reason", None)) == (newest, UNREADABLE)


async def _commit_old(store: Store, n: int, start: int = 0) -> list[str]:
    """Leads as the version before inputs committed them: no input, no pick, no index entry."""
    old = [f"ld_{to_ms(T0) + k:012x}{k:024x}" for k in range(start, start + n)]
    for lead_id in old:
        await store.commit(CommitPlan(lead_id=lead_id, now=T0, kind="queue", decision=b"{}",
                                      queue="q"))
    return old


async def test_the_start_up_backfill_counts_older_leads_as_skipped_once(
        store: Store, tmp_path: Path) -> None:
    manager = _rules(tmp_path / "live")
    old = await _commit_old(store, 4)
    await _route(store, manager, 2)
    replay = ReplayService(store)
    assert len([i async for i in replay.run(manager.current, ReplayQuery())]) == 2
    await backfill_at_start(store, delay=0, pause=0, count=2)  # as the service starts
    items = [i async for i in replay.run(manager.current, ReplayQuery())]
    assert [(i.lead_id, i.reason) for i in items if isinstance(i, Skip)] == \
        [(lead_id, NO_INPUT) for lead_id in old]
    assert sum(isinstance(i, ReplayedLead) for i in items) == 2
    assert await store.wire.call("HGET", store.keys.arrivals_backfill, "done") == b"4"
    assert await store.wire.call("EXISTS", store.keys.arrivals_lease) == 0
    # Once per deployment: a second start (and the replay's own check) scan nothing again.
    await _commit_old(store, 2, start=10)  # (only an old version writes these)
    await backfill_at_start(store, delay=0, pause=0)
    assert await replay.prepare() is None
    assert len([i async for i in replay.run(manager.current, ReplayQuery())]) == 6


async def test_a_replay_completes_a_backfill_that_never_finished(store: Store,
                                                                tmp_path: Path) -> None:
    """The CLI and the API call prepare() first: a deployment whose start-up backfill never
    ran (or was stopped) still gets its older leads counted."""
    manager = _rules(tmp_path / "live")
    old = await _commit_old(store, 3)
    await _route(store, manager, 1)
    replay = ReplayService(store)
    assert await replay.prepare() == 3
    items = [i async for i in replay.run(manager.current, ReplayQuery())]
    assert [i.lead_id for i in items if isinstance(i, Skip) and i.reason == NO_INPUT] == old
    assert await replay.prepare() is None


async def test_the_start_up_backfill_survives_redis_errors(store: Store) -> None:
    """Live routing never depends on it: an error is logged, not raised (it resumes later)."""
    await store.wire.call("SET", store.keys.arrivals_backfill, "not a hash")
    await backfill_at_start(store, delay=0, pause=0)  # WRONGTYPE on the marker: logged
    assert await store.wire.call("GET", store.keys.arrivals_backfill) == b"not a hash"


async def test_a_serving_replay_lets_live_work_run_between_slices(store: Store,
                                                                  tmp_path: Path) -> None:
    """With ``slice_seconds`` the replay yields to the event loop inside a page (every 8
    leads at most, once the slice is spent); without it, only between pages. A concurrent task
    ticks whenever it gets the loop; each evaluation notes the tick it saw."""
    manager = _rules(tmp_path / "live")
    await _route(store, manager, 100)
    ticks = [0]
    seen: list[int] = []

    def noting(ruleset: Ruleset) -> Any:
        inner = manager.evaluator(ruleset)

        def evaluate(*args: Any, **kwargs: Any) -> Any:
            seen.append(ticks[0])
            return inner(*args, **kwargs)
        return evaluate

    async def ticker() -> None:
        while True:
            ticks[0] += 1
            await asyncio.sleep(0)

    def longest_run() -> int:  # most consecutive evaluations without the ticker running
        best = run = 0
        for i, tick in enumerate(seen):
            run = run + 1 if i and tick == seen[i - 1] else 1
            best = max(best, run)
        return best

    for span, expect in ((None, 100), (1e-9, 8)):
        seen.clear()
        task = asyncio.create_task(ticker())
        replay = ReplayService(store, batch=500, evaluator=noting, slice_seconds=span)
        items = [i async for i in replay.run(manager.current, ReplayQuery())]
        task.cancel()
        assert len(items) == len(seen) == 100
        assert longest_run() == expect, (span, seen)
