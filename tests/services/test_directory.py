"""router/services/directory.py: reps' live state, pools and account ownership (real Valkey)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from _wiring import wired

from router.services.directory import UnknownPool, UnknownRep
from router.state.audit import Actor
from router.state.store import Store

ADMIN = Actor("admin-token")

pytestmark = pytest.mark.anyio

NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


async def test_a_rep_joins_the_rules_and_the_live_state(store: Store, tmp_path: Path) -> None:
    directory = wired(store, tmp_path, now=lambda: NOW).directory
    view = await directory.rep("r1")
    assert (view.id, view.name, view.timezone, view.live.status) == ("r1", "Rep R1", "UTC",
                                                                     "available")
    assert view.available_now is True

    until = NOW + dt.timedelta(days=2)
    state = await directory.set_rep("r1", "out_of_office", until, by=ADMIN)
    assert (state.status, state.until) == ("out_of_office", until)
    view = await directory.rep("r1")
    assert view.live.status == "out_of_office" and view.available_now is False


async def test_unknown_reps_and_pools_name_the_known_ones(store: Store, tmp_path: Path) -> None:
    directory = wired(store, tmp_path).directory
    with pytest.raises(UnknownRep, match=r"no rep 'zz' in rules/reps.yaml \(known: .*r1"):
        await directory.rep("zz")
    with pytest.raises(UnknownRep):
        await directory.set_rep("zz", "away", None, by=ADMIN)
    with pytest.raises(UnknownPool, match=r"no pool 'nope' \(known: .*rr"):
        await directory.pool("nope")


async def test_pool_statistics_at_the_service_clock(store: Store, tmp_path: Path) -> None:
    directory = wired(store, tmp_path, now=lambda: NOW).directory
    await directory.set_rep("r2", "away", None, by=ADMIN)
    stats = await directory.pool("rr")
    members = {m.rep: m for m in stats.members}
    assert set(members) == {"r1", "r2", "r3"}
    assert members["r1"].eligible and not members["r2"].eligible


async def test_account_owners_are_reps_of_the_rules(store: Store, tmp_path: Path) -> None:
    directory = wired(store, tmp_path).directory
    assert await directory.account_owner("acme.com") is None
    await directory.set_account_owner("acme.com", "owner1", by=ADMIN)
    assert await directory.account_owner("acme.com") == "owner1"
    with pytest.raises(UnknownRep):
        await directory.set_account_owner("acme.com", "stranger", by=ADMIN)
    assert await directory.account_owner("acme.com") == "owner1"  # unchanged
    assert await directory.delete_account("acme.com", by=ADMIN) is True
    assert await directory.delete_account("acme.com", by=ADMIN) is False
