"""router/services/rules_watch.py, the settle step: a rules file saved in place (truncate, then
write, as many editors and ``cp`` do) is reloaded once it is whole, never half-written — a
half-written file would be a rejected reload (audited, logged, counted) nobody made. A file
that is really broken is still rejected, once; an announced reload (generation) is not delayed.

Deterministic: the watcher's settle wait (``RulesWatcher.sleep``) is replaced by one that lets
the "editor" write the rest of the file during the wait, instead of racing real timers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest
from _service import write_rules

from router.observability import metrics
from router.services.rules import RulesManager
from router.services.rules_watch import _SETTLE_WAITS, RulesWatcher
from router.state.audit import Actor
from router.state.store import Store

pytestmark = pytest.mark.anyio

SETTLE = 0.5
EDIT = ("budget >= 50000", "budget >= 40000")  # a real change: a new version


def _manager(directory: Path) -> RulesManager:
    manager = RulesManager(directory)
    manager.load_initial()
    return manager


def _rejections() -> float:
    return metrics.sample_value("leadrouter_rules_reloads_total",
                                {"result": "rejected", "trigger": "file_change"})


class _Audit:
    """The watcher's audit record: what it was asked to record."""

    def __init__(self) -> None:
        self.actions: list[str] = []

    async def __call__(self, actor: Actor, action: str, target: str,
                       details: dict[str, Any] | None = None, *,
                       claim: str | None = None) -> str | None:
        self.actions.append(action)
        return "1-0"


def _watcher(directory: Path, *, settle: float = SETTLE) -> tuple[RulesWatcher, _Audit]:
    # poll_seconds only bounds the settle interval here: run() is never started
    watcher = RulesWatcher(_manager(directory), poll_seconds=2.0, settle_seconds=settle)
    audit = _Audit()
    watcher.record = audit
    return watcher, audit


def _waits(watcher: RulesWatcher, during: Callable[[int], None] | None = None) -> list[float]:
    """Replace the settle wait: each wait is recorded and ``during(n)`` (n: 1, 2, ...) runs in it,
    as another process writing while the watcher waits."""
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if during is not None:
            during(len(waits))

    watcher.sleep = sleep
    return waits


def _start_in_place_save(path: Path, text: str) -> tuple[IO[str], str]:
    """An editor saving in place: open, truncate, write the first half (flushed: on disk).
    Returns the open file and the half not written yet."""
    cut = text.index(EDIT[1]) + 10  # inside a quoted condition: the first half does not load
    handle = path.open("r+", encoding="utf-8")
    handle.truncate(0)
    handle.write(text[:cut])
    handle.flush()
    return handle, text[cut:]


async def test_a_file_saved_in_place_in_two_halves_is_reloaded_once_whole(
        tmp_path: Path) -> None:
    directory = write_rules(tmp_path / "rules")
    watcher, audit = _watcher(directory)
    rejected = _rejections()
    target = directory / "scoring.yaml"
    handle, rest = _start_in_place_save(target, target.read_text().replace(*EDIT))

    def editor(n: int) -> None:  # the pause between the halves is shorter than the settle
        if n == 1:
            handle.write(rest)
            handle.close()

    try:
        waits = _waits(watcher, editor)
        await watcher.poll()
    finally:
        handle.close()
    # half (looked at), whole after the first wait, whole again after the second: agreed
    assert waits == [SETTLE, SETTLE]
    result = watcher.rules.last_result
    assert result is not None and (result.ok, result.changed, result.reason) == \
        (True, True, "file change")
    assert watcher.rules.last_rejected is None
    assert audit.actions == ["rules.reload.accepted"]
    assert _rejections() == rejected
    assert EDIT[1] in target.read_text()

    await watcher.poll()  # nothing changed since: no second reload, no wait
    assert watcher.rules.last_result is result and waits == [SETTLE, SETTLE]
    assert audit.actions == ["rules.reload.accepted"]


async def test_without_settling_the_half_written_file_is_what_gets_read(tmp_path: Path) -> None:
    """The failure the settle step prevents (settle 0: reload at the first look)."""
    directory = write_rules(tmp_path / "rules")
    watcher, audit = _watcher(directory, settle=0)
    target = directory / "scoring.yaml"
    handle, rest = _start_in_place_save(target, target.read_text().replace(*EDIT))
    try:
        waits = _waits(watcher)
        await watcher.poll()
        handle.write(rest)
    finally:
        handle.close()
    assert waits == []
    result = watcher.rules.last_result
    assert result is not None and not result.ok
    assert audit.actions == ["rules.reload.rejected"]


async def test_a_broken_file_is_still_rejected_once_after_settling(tmp_path: Path) -> None:
    directory = write_rules(tmp_path / "rules")
    # the real asyncio.sleep, short: two looks agree and the broken file is read
    watcher, audit = _watcher(directory, settle=0.01)
    rejected = _rejections()
    version = watcher.rules.current.version
    target = directory / "scoring.yaml"
    target.write_text(target.read_text().replace("budget >= 50000", "budgett >= 50000"))

    await watcher.poll()
    result = watcher.rules.last_result
    assert result is not None and (result.ok, result.reason) == (False, "file change")
    assert any("budgett" in e for e in result.errors)
    assert watcher.rules.current.version == version  # the working ruleset keeps serving
    assert audit.actions == ["rules.reload.rejected"]
    assert _rejections() == rejected + 1

    await watcher.poll()  # not retried until the files change again
    assert watcher.rules.last_result is result
    assert audit.actions == ["rules.reload.rejected"]
    assert _rejections() == rejected + 1


async def test_a_file_that_never_settles_is_reloaded_anyway(tmp_path: Path) -> None:
    directory = write_rules(tmp_path / "rules")
    watcher, audit = _watcher(directory)
    target = directory / "scoring.yaml"
    target.write_text(target.read_text().replace(*EDIT))

    def touch(n: int) -> None:  # a different size at every look
        with target.open("a", encoding="utf-8") as handle:
            handle.write(f"# {n}\n")

    waits = _waits(watcher, touch)
    await watcher.poll()
    assert waits == [SETTLE] * _SETTLE_WAITS
    result = watcher.rules.last_result
    assert result is not None and (result.ok, result.changed) == (True, True)
    assert audit.actions == ["rules.reload.accepted"]


async def test_an_announced_reload_is_not_delayed(store: Store, tmp_path: Path) -> None:
    directory = write_rules(tmp_path / "rules")
    one, _ = _watcher(directory)
    other, audit = _watcher(directory)
    await one.attach(store)
    await other.attach(store)
    target = directory / "scoring.yaml"
    target.write_text(target.read_text().replace(*EDIT))
    assert one.rules.reload(reason="admin").changed  # an admin reload in one worker...
    await one.announce()

    waits = _waits(other)
    await other.poll()  # ...reaches the other at once, though its files changed too
    assert waits == []
    result = other.rules.last_result
    assert result is not None and (result.ok, result.reason) == (True, "generation")
    assert other.rules.current.version == one.rules.current.version
    assert audit.actions == []  # recorded by the worker that served the admin request


def test_the_settle_interval_is_at_most_the_poll_interval(tmp_path: Path) -> None:
    manager = _manager(write_rules(tmp_path / "rules"))
    assert RulesWatcher(manager, poll_seconds=2.0, settle_seconds=0.25).settle_seconds == 0.25
    assert RulesWatcher(manager, poll_seconds=0.1, settle_seconds=0.25).settle_seconds == 0.1
    assert RulesWatcher(manager, poll_seconds=0, settle_seconds=0.25).settle_seconds == 0
