"""router/state/inputs.py on real Valkey: the arrival index's pages, and the backfill of leads
committed before the index existed."""

from __future__ import annotations

import datetime as dt

import pytest

from router.state import CommitPlan, Store
from router.state.inputs import (
    arrivals,
    backfill_arrivals,
    backfill_finished,
    complete_backfill,
    read_stored,
)
from router.state.models import to_ms

pytestmark = pytest.mark.anyio

T0 = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)


def _id(ms: int, n: int) -> str:
    return f"ld_{ms:012x}{n:024x}"


async def _commit(store: Store, lead_id: str, now: dt.datetime, *, kept: bool) -> None:
    await store.commit(CommitPlan(lead_id=lead_id, now=now, kind="queue", decision=b"{}",
                                  queue="q", input=b"in" if kept else b""))


async def test_pages_walk_a_window_in_arrival_order_across_equal_times(store: Store) -> None:
    ids = []
    for i in range(7):  # two or three leads share each millisecond
        now = T0 + dt.timedelta(milliseconds=i // 3)
        ids.append(_id(to_ms(now), i))
        await _commit(store, ids[-1], now, kept=True)
    got, after = [], None
    while page := await arrivals(store, since_ms=None, until_ms=None, after=after, count=2):
        got += page
        last = page[-1][1]
        same = sum(1 for _, ms in page if ms == last)
        after = (last, same + (after[1] if after and after[0] == last else 0))
    assert sorted(got) == sorted((i, to_ms(T0) + n // 3) for n, i in enumerate(ids))
    assert [ms for _, ms in got] == sorted(ms for _, ms in got) and len(got) == 7
    window = await arrivals(store, since_ms=to_ms(T0) + 1, until_ms=to_ms(T0) + 1, after=None,
                            count=10)
    assert sorted(i for i, _ in window) == sorted(ids[3:6])


async def test_backfill_indexes_leads_committed_without_it(store: Store) -> None:
    old = [_id(to_ms(T0) + n, n) for n in range(3)]
    for n, lead_id in enumerate(old):  # committed without an input: not indexed
        await _commit(store, lead_id, T0 + dt.timedelta(milliseconds=n), kept=False)
    new = _id(to_ms(T0) + 10, 9)
    await _commit(store, new, T0 + dt.timedelta(milliseconds=10), kept=True)
    page = await arrivals(store, since_ms=None, until_ms=None, after=None, count=10)
    assert page == [(new, to_ms(T0) + 10)]
    assert await backfill_arrivals(store, count=2) == 3
    assert await backfill_arrivals(store) == 0  # once is enough; the index entry stays
    page = await arrivals(store, since_ms=None, until_ms=None, after=None, count=10)
    assert [i for i, _ in page] == [*old, new]
    stored = await read_stored(store, page)
    assert [(s.input, s.pick is None, s.missing) for s in stored] == \
        [(None, True, False)] * 3 + [(b"in", False, False)]


async def test_the_index_keeps_the_retention_and_forgets_older_leads(store: Store) -> None:
    old = [_id(to_ms(T0), n) for n in range(17)]
    for lead_id in old:
        await _commit(store, lead_id, T0, kept=True)
    later = T0 + dt.timedelta(milliseconds=store.retention_ms + 1)
    new = [_id(to_ms(later), n) for n in range(17)]  # one in 16 commits prunes
    for lead_id in new:
        await _commit(store, lead_id, later, kept=True)
    page = await arrivals(store, since_ms=None, until_ms=None, after=None, count=100)
    assert sorted(i for i, _ in page) == sorted(new)
    ttl = await store.wire.call("PTTL", store.keys.arrivals)
    assert store.retention_ms - 60_000 < ttl <= store.retention_ms


async def test_complete_backfill_resumes_from_its_cursor_and_runs_once(store: Store) -> None:
    old = [_id(to_ms(T0) + n, n) for n in range(40)]
    for n, lead_id in enumerate(old):
        await _commit(store, lead_id, T0 + dt.timedelta(milliseconds=n), kept=False)
    k = store.keys
    # A run stopped after its first step: the step's keys were not indexed, its cursor kept.
    cursor, first = await store.wire.call("SCAN", 0, "MATCH", k.lead("*"), "COUNT", 5,
                                          "TYPE", "hash")
    assert cursor != b"0" and 0 < len(first) < len(old)
    await store.wire.call("HSET", k.arrivals_backfill, "cursor", cursor)
    assert not await backfill_finished(store)
    added = await complete_backfill(store, count=5)
    assert added == len(old) - len(first)  # from the cursor on, not from the start
    page = await arrivals(store, since_ms=None, until_ms=None, after=None, count=100)
    skipped = {k.lead_id(key) for key in first}
    assert {i for i, _ in page} == set(old) - skipped
    assert await store.wire.call("HGETALL", k.arrivals_backfill) == \
        [b"done", str(added).encode()]
    assert await backfill_finished(store)
    assert await complete_backfill(store) is None  # once per deployment


async def test_the_exclusive_backfill_leaves_it_to_the_lease_holder(store: Store) -> None:
    await _commit(store, _id(to_ms(T0), 0), T0, kept=False)
    await store.wire.call("SET", store.keys.arrivals_lease, "another worker", "PX", 60_000)
    assert await complete_backfill(store, exclusive=True) is None
    assert await store.wire.call("EXISTS", store.keys.arrivals) == 0
    assert not await backfill_finished(store)
    await store.wire.call("DEL", store.keys.arrivals_lease)
    assert await complete_backfill(store, exclusive=True) == 1
    assert await store.wire.call("EXISTS", store.keys.arrivals_lease) == 0


async def test_a_backfill_with_nothing_to_index_finishes(store: Store) -> None:
    assert await complete_backfill(store) == 0
    assert await backfill_finished(store)
