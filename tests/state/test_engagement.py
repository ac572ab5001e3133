"""router/state/engagement.py against real Valkey: the event and identify scripts against their
Python mirror (router/engine/engagement.py), bounded memory per person, the commit's report of
events that slipped in before it, one round trip for an event and its lead, stale
re-evaluations refused, and erasure. The pure math and the rule section:
tests/engine/test_engagement.py."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
import redis.asyncio

from router.engine import engagement as eng
from router.engine.engagement import DAY_MS, TypeActivity
from router.state.engagement import (
    EngagementLimits,
    EngagementStore,
    PersonRead,
    PersonState,
    Requalify,
    alias_id,
    email_person,
    erase_person,
)
from router.state.models import CommitPlan, EngagementLink
from router.state.store import Store

T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)
NOW = eng.ms(T0)
H = 14 * DAY_MS


# --- the scripts, against their Python mirror --------------------------------------------------


@pytest.fixture
async def store(redis_url: str) -> Any:
    s = await Store.connect(redis_url, retention=dt.timedelta(days=30))
    try:
        yield s
    finally:
        await s.close()


@pytest.mark.anyio
async def test_event_script_matches_the_python_reference(store: Store) -> None:
    es = EngagementStore(store, EngagementLimits(max_times=10))
    rng = random.Random(7)
    ref: TypeActivity | None = None
    person = email_person("ref@x.example")
    for i in range(60):
        at = NOW - rng.randrange(0, 400) * DAY_MS - rng.randrange(DAY_MS)
        got, _ = await es.record(person, event="p", at=eng.from_ms(at), now=T0,
                              message_id=f"m{i}", types=["p"], half_life_ms=H)
        ref = eng.record(ref, at, NOW, half_life_ms=H, max_times=10)
        mine = got.state.activity.types["p"]
        assert (mine.n, mine.times, mine.rem_at) == (ref.n, ref.times, ref.rem_at)
        assert mine.rem == pytest.approx(ref.rem, rel=1e-12)
    assert ref is not None and len(ref.times) == 10 and ref.n == 60


@pytest.mark.anyio
async def test_identify_merges_like_the_python_reference(store: Store) -> None:
    es = EngagementStore(store, EngagementLimits(max_times=5))
    anon = alias_id("a", "visitor-1")
    known = email_person("k@x.example")
    ref_a = ref_k = None
    for i in range(8):
        for person, ref_name in ((anon, "a"), (known, "k")):
            at = NOW - (i * 3 + (ref_name == "a")) * DAY_MS
            await es.record(person, event="p", at=eng.from_ms(at), now=T0,
                            message_id=f"{ref_name}{i}", types=["p"], half_life_ms=H)
            if ref_name == "a":
                ref_a = eng.record(ref_a, at, NOW, half_life_ms=H, max_times=5)
            else:
                ref_k = eng.record(ref_k, at, NOW, half_life_ms=H, max_times=5)
    assert ref_a is not None and ref_k is not None
    got = await es.identify(known, now=T0, sources={anon: None}, traits={"title": "CTO"},
                            message_id="id-1", types=["p"], half_life_ms=H)
    assert got.merged == 1 and got.state.traits == {"title": "CTO"}
    ref = eng.merge(ref_k, ref_a, NOW, half_life_ms=H, max_times=5)
    mine = got.state.activity.types["p"]
    assert (mine.n, mine.times, mine.rem_at) == (ref.n, ref.times, ref.rem_at)
    assert mine.rem == pytest.approx(ref.rem, rel=1e-12)
    assert await es.resolve([anon]) == [known]
    # the anonymous id's own records are gone; its message ids now dedupe for the person
    again, _ = await es.record(known, event="p", at=T0, now=T0, message_id="a3", types=["p"],
                            half_life_ms=H)
    assert again.status == "duplicate"
    assert await store.wire.call("EXISTS", store.keys.engagement(anon)) == 0


@pytest.mark.anyio
async def test_memory_per_person_stays_bounded(store: Store,
                                               aredis: redis.asyncio.Redis) -> None:
    limits = EngagementLimits(max_types=8, seen_max=200, recent_max=20)
    es = EngagementStore(store, limits)
    person = email_person("busy@x.example")
    for i in range(3000):
        await es.record(person, event=f"type{i % 40}" if i % 2 else "p",
                        at=eng.from_ms(NOW - (i % 500) * 3_600_000), now=T0,
                        message_id=f"msg-{i}", types=["p"], half_life_ms=H)
    late, _ = await es.record(person, event="late", at=T0, now=T0, message_id="late",
                           types=["p", "late"], half_life_ms=H)
    ignored, _ = await es.record(person, event="other", at=T0, now=T0, message_id="other",
                              types=["p", "late"], half_life_ms=H)
    assert (late.status, ignored.status) == ("ok", "ignored")
    keys = sorted(await aredis.keys("*"))
    assert keys == [store.keys.engagement(person).encode(),
                    store.keys.engagement_seen(person).encode()]
    fields: dict[bytes, bytes] = await aredis.hgetall(  # type: ignore[assignment]
        store.keys.engagement(person))
    types = [k for k in fields if k.startswith(b"e:")]
    assert len(types) == 9  # 8 types, plus one the rules read: kept even beyond the cap
    assert int(fields[b"nt"]) == 9
    assert all(len(TypeActivity.decode(fields[k]).times) <= 100 for k in types)
    assert TypeActivity.decode(fields[b"e:p"]).n == 1500
    assert await aredis.zcard(store.keys.engagement_seen(person)) == 200
    assert len(PersonRead(person, ["p"]).parse([[b"1", None, None, None,
                                                 fields[b"recent"], None]]).recent) == 20
    assert (await aredis.pttl(store.keys.engagement(person))) <= limits.ttl_ms
    assert (await aredis.pttl(store.keys.engagement_seen(person))) <= limits.seen_ttl_ms
    # Exact sizes (SAMPLES 0): the default estimate extrapolates from 5 skiplist nodes of random
    # height and varied by a third between server starts (14.8k-20.6k for the same 200 ids).
    size = await aredis.memory_usage(store.keys.engagement(person), samples=0)
    seen = await aredis.memory_usage(store.keys.engagement_seen(person), samples=0)
    assert size is not None and size < 24_000, size
    assert seen is not None and seen < 20_000, seen


# --- the lead's side: prefetch, commit link, stale events, requalify refusals -----------------


def _plan(lead_id: str, link: EngagementLink) -> CommitPlan:
    return CommitPlan(lead_id=lead_id, now=T0, kind="queue", decision=b'{"status":"nurture"}',
                      queue="nurture", engagement=link)


@pytest.mark.anyio
async def test_commit_links_the_person_and_reports_events_that_slipped_in(store: Store) -> None:
    es = EngagementStore(store)
    person = email_person("race@x.example")
    await es.record(person, event="p", at=T0, now=T0, message_id=None, types=["p"],
                    half_life_ms=H)
    read = PersonRead(person, ["p"])
    pre = await store.prefetch(extra=[read])
    seen: PersonState = pre.extra[0]
    assert seen.seq == 1 and seen.activity.types["p"].n == 1
    link = EngagementLink(person=person, seq=seen.seq, dom="x.example", ttl_ms=10_000_000)
    quiet = await store.commit(_plan("ld_quiet", link))
    assert quiet.committed and not quiet.engagement_stale
    # an event between the prefetch and the commit
    await es.record(person, event="p", at=T0, now=T0, message_id=None, types=["p"],
                    half_life_ms=H)
    raced = await store.commit(_plan("ld_raced", link))
    assert raced.engagement_stale
    state = await es.person(person)
    assert state is not None and state.lead == "ld_raced" and state.dom == "x.example"


@pytest.mark.anyio
async def test_an_event_reads_its_lead_in_the_same_round_trip(store: Store) -> None:
    es = EngagementStore(store)
    person = email_person("pipe@x.example")
    await store.commit(_plan("ld_pipe", EngagementLink(person=person, seq=0, ttl_ms=10_000)))
    await store.put_account("x.example", "r9")
    trips = store.round_trips
    rec, read = await es.record(person, event="p", at=T0, now=T0, message_id=None,
                                types=["p"], half_life_ms=H, read_lead="ld_pipe",
                                account_domain="x.example")
    assert store.round_trips == trips + 1
    assert rec.state.lead == "ld_pipe" and rec.state.seq == 1
    assert read is not None and (read.state, read.queue, read.eng_seq) == ("queued", "nurture", 0)
    assert read.account_owner == "r9"
    await store.wire.call("SCRIPT", "FLUSH")  # NOSCRIPT inside the batch: loaded and retried
    rec, read = await es.record(person, event="p", at=T0, now=T0, message_id=None,
                                types=["p"], half_life_ms=H, read_lead="ld_gone")
    assert rec.state.seq == 2 and read is None


@pytest.mark.anyio
async def test_requalify_refuses_old_evaluations_and_moved_leads(store: Store) -> None:
    es = EngagementStore(store)
    await store.commit(_plan("ld_x", EngagementLink(person="l:ld_x", seq=0, ttl_ms=1000)))

    def plan(seq: int, **kw: Any) -> Requalify:
        base: dict[str, Any] = dict(
            lead_id="ld_x", now=T0, seq=seq, mode="rescore", status="nurture",
            decision=b'{"status":"nurture"}', expect_owner="", expect_state="queued",
            expect_queue="nurture", expect_status="nurture",
            entry={"event": "rescored", "data": {"to": "nurture"}})
        return Requalify(**{**base, **kw})

    assert (await es.requalify(plan(3))).status == "rescored"
    assert (await es.requalify(plan(3))).status == "stale"
    assert (await es.requalify(plan(2))).status == "stale"
    assert (await es.requalify(plan(4, expect_state="assigned"))).status == "changed"
    assert (await es.requalify(plan(4, expect_status="mql"))).status == "changed"
    assert (await es.requalify(plan(4, mode="seq"))).status == "unchanged"
    assert (await es.requalify(plan(5, lead_id="ld_nope"))).status == "not_found"


@pytest.mark.anyio
async def test_erasure_removes_the_person_and_its_aliases(store: Store,
                                                          aredis: redis.asyncio.Redis) -> None:
    es = EngagementStore(store)
    anon = alias_id("a", "v-9")
    person = email_person("gone@x.example")
    await es.record(anon, event="p", at=T0, now=T0, message_id="a", types=[], half_life_ms=H)
    await es.identify(person, now=T0, sources={anon: None}, traits=None, message_id=None,
                      types=[], half_life_ms=H)
    await es.record(person, event="q", at=T0, now=T0, message_id="b", types=[],
                    half_life_ms=H)
    assert len(await aredis.keys("*")) == 3
    assert await erase_person(store, email="Gone@X.example") == 2
    assert await aredis.keys("*") == []
