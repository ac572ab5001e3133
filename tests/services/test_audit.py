"""router/services/audit.py on real Valkey: claims record an event once, ids follow the app's
clock (and survive a clock behind another worker's), a rare filter pages on instead of
scanning the whole log, and actors print as the API shows them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from _wiring import wired

from router.services import audit as audit_module
from router.services.audit import Actor, AuditLog, BadCursor
from router.services.clock import Clock
from router.state.store import Store

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
ADMIN = Actor("admin-token")


def test_actors_print_as_the_api_shows_them() -> None:
    assert [str(a) for a in (ADMIN, Actor("key", "key_1"), Actor("rules-watcher"),
                             Actor("console", "key_2"))] == \
        ["admin-token", "key:key_1", "rules-watcher", "console:key_2"]
    assert [a.credential for a in (ADMIN, Actor("key", "key_1"), Actor("console", "key_2"))] \
        == ["admin-token", "key_1", "key_2"]


@pytest.mark.anyio
async def test_a_claimed_event_is_recorded_once(store: Store, tmp_path: Path) -> None:
    audit = wired(store, tmp_path, now=lambda: NOW).audit
    first = await audit.record(Actor("rules-watcher"), "rules.reload.accepted", "rules",
                               {"version": "v2"}, claim="abc")
    again = await audit.record(Actor("rules-watcher"), "rules.reload.accepted", "rules",
                               {"version": "v2"}, claim="abc")
    other = await audit.record(Actor("rules-watcher"), "rules.reload.accepted", "rules",
                               {"version": "v3"}, claim="def")
    assert first is not None and again is None and other is not None
    assert first.startswith(f"{int(NOW.timestamp() * 1000)}-")
    page = await audit.query()
    assert [e.details["version"] for e in page.entries] == ["v3", "v2"]
    assert page.next_cursor is None
    with pytest.raises(ValueError, match="unknown audit action"):
        await audit.record(ADMIN, "rules.deleted", "rules")


@pytest.mark.anyio
async def test_a_worker_whose_clock_is_behind_still_records(store: Store,
                                                            tmp_path: Path) -> None:
    ahead = wired(store, tmp_path, now=lambda: NOW).audit
    behind = AuditLog(store=store, clock=Clock(lambda: NOW - dt.timedelta(seconds=5)),
                      retention_s=86400)
    await ahead.record(ADMIN, "rep.status", "rep:r1")
    written = await behind.record(ADMIN, "rep.status", "rep:r2")
    assert written is not None  # the server's next id instead of one below the newest
    targets = [e.target for e in (await ahead.query(limit=10)).entries]
    assert sorted(targets) == ["rep:r1", "rep:r2"]


@pytest.mark.anyio
async def test_a_rare_filter_pages_on_instead_of_scanning_everything(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_module, "_CHUNK", 4)
    monkeypatch.setattr(audit_module, "_SCAN_LIMIT", 10)
    audit = wired(store, tmp_path, now=lambda: NOW).audit
    await audit.record(ADMIN, "account.owner", "account:acme.com", {"to": "r1"})
    for i in range(30):
        await audit.record(ADMIN, "rep.status", f"rep:r{i % 3}")
    pages, cursor, found = 0, None, []
    while True:
        page = await audit.query(action="account.owner", limit=5, cursor=cursor)
        pages += 1
        found += page.entries
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert [e.target for e in found] == ["account:acme.com"]
    assert pages >= 3  # no page looked at more than about 10 entries
    with pytest.raises(BadCursor):
        await audit.query(action="rep.status", cursor=cursor or "x")
