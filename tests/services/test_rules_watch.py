"""router/services/rules_watch.py: an admin reload in one worker reaches the others through
the generation counter in Redis; a file change reaches every worker by itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from _service import write_rules

from router.services.rules import RulesManager
from router.services.rules_watch import RulesWatcher
from router.state.store import Store

pytestmark = pytest.mark.anyio


def _manager(directory: Path) -> RulesManager:
    manager = RulesManager(directory)
    manager.load_initial()
    return manager


async def test_an_announced_reload_reaches_the_other_workers(store: Store,
                                                             tmp_path: Path) -> None:
    directory = write_rules(tmp_path / "rules")
    one, other = RulesWatcher(_manager(directory), poll_seconds=0), \
        RulesWatcher(_manager(directory), poll_seconds=0)
    await one.attach(store)
    await other.attach(store)
    assert one.generation == other.generation == 0

    await other.poll()  # nothing moved: no reload
    assert other.rules.last_result is None

    await one.announce()
    assert one.generation == 1
    await other.poll()
    result = other.rules.last_result
    assert result is not None and (result.ok, result.reason) == (True, "generation")
    assert other.generation == 1


async def test_a_file_change_is_reloaded_without_redis(tmp_path: Path) -> None:
    directory = write_rules(tmp_path / "rules")
    watcher = RulesWatcher(_manager(directory), poll_seconds=0)
    await watcher.announce()  # no store attached: nothing to tell
    target = directory / "scoring.yaml"
    target.write_text(target.read_text() + "# edited\n")
    await watcher.poll()
    result = watcher.rules.last_result
    assert result is not None and (result.ok, result.reason) == (True, "file change")
    await watcher.poll()  # nothing changed since
    assert watcher.rules.last_result is result


async def test_an_unexpected_error_in_a_poll_does_not_end_the_watcher(tmp_path: Path) -> None:
    """Only Redis errors were caught inside a poll: anything else ended the polling task and
    the worker never reloaded again."""
    import asyncio

    watcher = RulesWatcher(_manager(write_rules(tmp_path / "rules")), poll_seconds=0.01)
    calls = 0

    def follower() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a follower's bug")

    watcher.followers.append(follower)
    task = asyncio.create_task(watcher.run())
    try:
        deadline = asyncio.get_running_loop().time() + 10  # "did not recover", not a timing
        while calls < 3 and not task.done() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        assert not task.done(), task.exception()
        assert calls >= 3
    finally:
        task.cancel()
