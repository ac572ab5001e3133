"""Store against a real Valkey: idempotency claims, accounts, reps, leads, round trips, TTLs,
and Redis going away."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import redis

from router.engine.availability import MemberPlan, PoolPlan
from router.state import (
    ClaimRequest,
    CommitPlan,
    HistoryEntry,
    Keys,
    StateUnavailable,
    Store,
    fingerprint,
)
from router.state.embedded import EmbeddedValkey

pytestmark = pytest.mark.anyio

DAY = "2026-03-02"
NOW = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
POOL = PoolPlan(id="p", strategy="round_robin", pool_cap=-1, day=DAY,
                members=(MemberPlan("a", 1, True, DAY, -1), MemberPlan("b", 1, True, DAY, -1)))
BODY = b'{"email": "x@acme.com"}'


def claim(key: str, lead_id: str, body: bytes = BODY, scope: str = "key:web") -> ClaimRequest:
    return ClaimRequest(scope=scope, key=key, fingerprint=fingerprint(body), lead_id=lead_id)


def plan(lead_id: str, claims: Sequence[Any] = (), **extra: Any) -> CommitPlan:
    extra.setdefault("chain", (POOL,))
    return CommitPlan(lead_id=lead_id, now=NOW, kind="pool", decision=b"{}",
                      claims=tuple(claims), **extra)


# -- idempotency ----------------------------------------------------------------------------


async def test_claim_states_new_inflight_done_mismatch(store: Store) -> None:
    first = await store.prefetch([claim("k1", "L1")])
    (c,) = first.claims
    assert (c.state, c.lead_id, c.owned) == ("new", "L1", True) and first.blocking is None

    (busy,) = (await store.prefetch([claim("k1", "L2")])).claims
    assert (busy.state, busy.lead_id, busy.owned) == ("in_flight", "L1", False)

    result = await store.commit(plan("L1", first.owned_claims))
    assert result.status == "assigned"

    again = await store.prefetch([claim("k1", "L3")])
    assert again.blocking is not None
    assert (again.blocking.state, again.blocking.lead_id) == ("done", "L1")
    (other,) = (await store.prefetch([claim("k1", "L4", body=b"{}")])).claims
    assert (other.state, other.lead_id) == ("mismatch", "L1")


async def test_idempotency_records_keep_the_configured_retention(redis_url: str,
                                                                  redis_client: Any) -> None:
    # 30 days of decisions, but retries are deduplicated for 1 hour only (and a record never
    # outlives the decision it points to: with 1 h decisions and 24 h dedupe, it lives 1 h).
    for retention, idem, expected_h in ((dt.timedelta(days=30), dt.timedelta(hours=1), 1),
                                        (dt.timedelta(hours=1), dt.timedelta(hours=24), 1)):
        s = await Store.connect(redis_url, retention=retention, idempotency_retention=idem)
        try:
            name = f"k-{expected_h}-{idem.total_seconds():.0f}"
            first = await s.prefetch([claim(name, f"L-{name}")])
            assert (await s.commit(plan(f"L-{name}", first.owned_claims))).status == "assigned"
            (record,) = [k for k in redis_client.keys("*idem*") if name.encode() in k]
            ttl_h = redis_client.pttl(record) / 3_600_000
            assert expected_h - 0.01 < ttl_h <= expected_h, (record, ttl_h)
        finally:
            await s.close()


async def test_key_and_external_id_are_scoped(store: Store) -> None:
    got = await store.prefetch([claim("same", "L1", scope="key:web"),
                                claim("same", "L1", scope="ext:web"),
                                claim("same", "L1", scope="ext:hubspot")])
    assert [c.state for c in got.claims] == ["new", "new", "new"]
    await store.commit(plan("L1", got.owned_claims))
    mixed = await store.prefetch([claim("fresh", "L2", scope="key:web"),
                                  claim("same", "L2", scope="ext:web")])
    assert [c.state for c in mixed.claims] == ["new", "done"]
    assert mixed.blocking is not None and mixed.blocking.lead_id == "L1"
    await store.release(mixed.claims)  # the duplicate gives back the key it did claim
    assert (await store.prefetch([claim("fresh", "L3")])).claims[0].state == "new"


async def test_blocking_prefers_mismatch_then_in_flight(store: Store) -> None:
    done = await store.prefetch([claim("k", "L1")])
    await store.commit(plan("L1", done.owned_claims))
    await store.prefetch([claim("busy", "L2")])
    got = await store.prefetch([claim("busy", "L3"), claim("k", "L3", body=b"other")])
    assert got.blocking is not None and got.blocking.state == "mismatch"


async def test_release_lets_a_retry_proceed(store: Store) -> None:
    got = await store.prefetch([claim("k", "L1")])
    await store.release(got.claims)
    assert (await store.prefetch([claim("k", "L2")])).claims[0].state == "new"


async def test_release_never_drops_someone_elses_claim(store: Store,
                                                       redis_client: redis.Redis) -> None:
    mine = await store.prefetch([claim("k", "L1")])
    redis_client.delete(mine.claims[0].redis_key)  # as if our in-flight TTL ran out...
    theirs = await store.prefetch([claim("k", "L2")])  # ...and another request took the key
    assert theirs.claims[0].state == "new"
    await store.release(mine.claims)
    assert (await store.prefetch([claim("k", "L3")])).claims[0].state == "in_flight"
    # And our late commit yields to the request that holds the key now.
    late = await store.commit(plan("L1", mine.owned_claims))
    assert (late.status, late.other_lead) == ("in_flight", "L2")
    assert await store.get_lead("L1") is None


async def test_inflight_claims_expire(redis_url: str) -> None:
    store = await Store.connect(redis_url, inflight_ttl=dt.timedelta(milliseconds=100))
    try:
        await store.prefetch([claim("k", "L1")])
        await asyncio.sleep(0.25)
        assert (await store.prefetch([claim("k", "L2")])).claims[0].state == "new"
    finally:
        await store.close()


async def test_concurrent_duplicates_route_once(store: Store) -> None:
    async def request(i: int) -> str:
        got = await store.prefetch([claim("dup", f"L{i}")])
        if got.blocking is not None:
            return got.blocking.state
        result = await store.commit(plan(f"L{i}", got.owned_claims))
        return result.status

    states = await asyncio.gather(*(request(i) for i in range(50)))
    assert states.count("assigned") == 1
    assert set(states) <= {"assigned", "in_flight", "done"}


# -- leads ------------------------------------------------------------------------


async def test_get_missing_lead(store: Store) -> None:
    assert await store.get_lead("nope") is None


async def test_lead_events_are_written_once_a_sink_reads_the_outbox(
        store: Store, redis_client: redis.Redis) -> None:
    """Without a sink's consumer group nothing could ever read an event (a group starts at the
    end of the stream), so nothing is written; from the group's creation on, every one is."""
    entry = HistoryEntry(event="accepted", at=NOW, by="a")
    await store.commit(plan("L1"))
    await store.transition("L1", now=NOW, new_state="accepted", entry=entry,
                           expected_owner="a", event="lead.accepted")
    assert not redis_client.exists("lr:{lr}:outbox")
    redis_client.xgroup_create("lr:{lr}:outbox", "sink:late", id="$", mkstream=True)
    await store.commit(plan("L2"))
    await store.transition("L2", now=NOW, new_state="accepted", entry=entry,
                           expected_owner="b", event="lead.accepted")
    events = [(f[b"type"], f[b"lead_id"]) for _, f in redis_client.xrange("lr:{lr}:outbox")]
    assert events == [(b"lead.assigned", b"L2"), (b"lead.accepted", b"L2")]


async def test_transition(store: Store, redis_client: redis.Redis, outbox_sink: str) -> None:
    r = await store.commit(plan("L1", due_at=NOW + dt.timedelta(minutes=5)))
    assert r.owner == "a"
    entry = HistoryEntry(event="accepted", at=NOW, by="a")
    wrong = await store.transition("L1", now=NOW, new_state="accepted", entry=entry,
                                   expected_owner="b")
    assert (wrong.status, wrong.owner, wrong.state) == ("conflict", "a", "assigned")
    bad_state = await store.transition("L1", now=NOW, new_state="accepted", entry=entry,
                                       expected_states=["queued"])
    assert bad_state.status == "conflict"
    later = NOW + dt.timedelta(minutes=2)
    ok = await store.transition("L1", now=later, new_state="accepted", entry=entry,
                                expected_owner="a", expected_states=["assigned"],
                                fields={"accepted_at": "1"}, close_open=True, clear_sla=True,
                                event="lead.accepted")
    assert (ok.status, ok.state) == ("ok", "accepted")
    lead = await store.get_lead("L1")
    assert lead is not None and lead.state == "accepted" and lead.updated_at == later
    assert [(h.event, h.at, h.by) for h in lead.history][-1] == ("accepted", later, "a")
    assert redis_client.zscore("lr:{lr}:sla:due", "L1") is None
    assert redis_client.zcard("lr:{lr}:rep:a:open") == 0
    assert redis_client.xrevrange("lr:{lr}:outbox", count=1)[0][1][b"type"] == b"lead.accepted"
    missing = await store.transition("nope", now=NOW, new_state="x", entry=entry)
    assert missing.status == "not_found"


# -- round trips, extension reads, TTLs -----------------------------------------------------


class _CounterRead:
    """An extra read riding in the prefetch pipeline, like engagement counts will."""

    def commands(self, keys: Keys) -> list[tuple[str, ...]]:
        return [("GET", f"{keys.prefix}demo:a"), ("GET", f"{keys.prefix}demo:b")]

    def parse(self, replies: list[Any]) -> int:
        return sum(int(r or 0) for r in replies)


async def test_two_round_trips_per_lead(store: Store, redis_client: redis.Redis) -> None:
    redis_client.set("lr:demo:a", 3)
    await store.ping()
    start = store.round_trips
    for i in range(20):
        claims = [claim(f"k{i}", f"L{i}"), claim(f"e{i}", f"L{i}", scope="ext:w")]
        got = await store.prefetch(claims, account_domain="acme.com", extra=[_CounterRead()])
        assert got.extra == (3,)
        await store.commit(plan(f"L{i}", got.owned_claims))
    assert store.round_trips - start == 40


async def test_every_key_expires_except_the_long_lived(store: Store,
                                                       redis_client: redis.Redis) -> None:
    await store.put_rep("a", "away", until=NOW - dt.timedelta(hours=1))
    await store.put_account("acme.com", "a")
    got = await store.prefetch([claim("k", "L1"), claim("x", "L1", scope="ext:w")],
                               account_domain="acme.com")
    await store.commit(plan("L1", got.owned_claims, due_at=NOW + dt.timedelta(hours=1),
                            sla_policy="hot"))
    await store.prefetch([claim("abandoned", "L9")])  # in flight, never committed
    await store.commit(CommitPlan(lead_id="L2", now=NOW, kind="owner", owner="a",
                                  owner_day=DAY, decision=b"{}"))
    await store.commit(CommitPlan(lead_id="L3", now=NOW, kind="queue", queue="triage",
                                  decision=b"{}"))
    wrr = PoolPlan(id="w", strategy="weighted_round_robin", pool_cap=5, day=DAY,
                   members=POOL.members)
    await store.commit(plan("L4", chain=(wrr,)))
    await store.transition("L1", now=NOW, new_state="accepted",
                           entry=HistoryEntry(event="accepted", at=NOW), expected_owner="a",
                           close_open=True, clear_sla=True, event="lead.accepted")

    # Documented in keys.py: one per rep, account and pool, or bounded by MAXLEN.
    long_lived = re.compile(r"^lr:\{lr\}:(rep:[^:]*|account:[^:]*|accounts|pool:[^:]*|outbox)$")
    keys = sorted(k.decode() for k in redis_client.scan_iter(count=1000))
    assert len(keys) > 15
    for key in keys:
        ttl = redis_client.pttl(key)
        if long_lived.match(key):
            assert ttl == -1, key
        else:
            assert ttl > 0, key


async def test_shared_keys_are_extended_never_shortened(store: Store,
                                                          redis_client: redis.Redis) -> None:
    """The person index and the SLA schedule outlive every lead in them (extend_ttl in
    _lib.lua: PEXPIRE GT, with PTTL only for a key that has no expiry yet)."""
    hour = dt.timedelta(hours=1)
    person, sla = store.keys.person("p1"), store.keys.sla_due

    def ttl(key: str) -> float:
        return int(redis_client.pttl(key)) / 3_600_000

    await store.commit(plan("T1", person="p1", due_at=NOW + 10 * hour, sla_policy="hot"))
    first_person, first_sla = ttl(person), ttl(sla)
    assert first_person > 10 and first_sla > 10  # a new key gets an expiry
    await store.commit(plan("T2", person="p1", due_at=NOW + hour, sla_policy="hot"))
    assert ttl(person) == pytest.approx(first_person, abs=0.01)  # not shortened
    assert ttl(sla) == pytest.approx(first_sla, abs=0.01)
    await store.commit(plan("T3", person="p1", due_at=NOW + 100 * hour, sla_policy="hot"))
    assert ttl(person) > first_person + 80 and ttl(sla) > first_sla + 80  # extended
    redis_client.persist(person)  # e.g. restored from a dump without expiries
    await store.commit(plan("T4", person="p1"))
    assert ttl(person) > 0
    assert redis_client.smembers(person) == {b"T1", b"T2", b"T3", b"T4"}


async def test_history_left_behind_is_trimmed_to_the_cap(store: Store,
                                                         redis_client: redis.Redis) -> None:
    history = store.keys.history("H1")
    redis_client.rpush(history, *[f"old{i}" for i in range(store.history_max)])
    await store.commit(plan("H1"))
    entries = redis_client.lrange(history, 0, -1)
    assert len(entries) == store.history_max
    assert b'"event":"created"' in entries[-2] and b'"event":"assigned"' in entries[-1]
    fresh = store.keys.history("H2")
    await store.commit(plan("H2"))
    assert redis_client.llen(fresh) == 2


# -- Redis unavailable ----------------------------------------------------------------------


async def test_state_unavailable_and_recovery(tmp_path: Path) -> None:
    server = EmbeddedValkey(tmp_path / "valkey", port=0)
    server.start()
    port = server.port
    store = await Store.connect(server.url)
    try:
        assert (await store.commit(plan("L1"))).owner == "a"
        server.stop()
        for call in (store.ping(), store.prefetch([claim("k", "L2")]), store.commit(plan("L2")),
                     store.get_lead("L1"), store.put_rep("a", "away")):
            with pytest.raises(StateUnavailable):
                await call
        # Back on the same port (the AOF kept the data; scripts are gone: NOSCRIPT reload).
        server = EmbeddedValkey(tmp_path / "valkey", port=port)
        server.start()
        # failed reconnects back off (doubling, at most 1 s: wire.py); then the next call
        # reconnects by itself
        await asyncio.sleep(1.0)
        before = store.round_trips
        assert (await store.commit(plan("L2"))).owner == "b"
        assert store.round_trips - before == 3  # EVALSHA, SCRIPT LOAD, EVALSHA
        assert (await store.get_lead("L1")) is not None
    finally:
        await store.close()
        server.stop()


async def test_connect_to_nothing_is_state_unavailable(tmp_path: Path) -> None:
    server = EmbeddedValkey(tmp_path / "gone")
    server.start()
    url = server.url
    server.stop()
    with pytest.raises(StateUnavailable):
        await Store.connect(url)
    lazy = await Store.connect(url, verify=False)  # a service may start before its Redis
    with pytest.raises(StateUnavailable):
        await lazy.ping()
    await lazy.close()


def test_works_on_uvloop(redis_url: str) -> None:
    """The service runs on uvloop, whose transports are not asyncio.Transport subclasses."""
    uvloop = pytest.importorskip("uvloop")

    async def flow() -> None:
        store = await Store.connect(redis_url)
        try:
            got = await store.prefetch([claim("k", "L1")], account_domain="acme.com")
            assert (await store.commit(plan("L1", got.owned_claims))).owner == "a"
            assert (await store.get_lead("L1")) is not None
        finally:
            await store.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(flow())


# -- the multiplexed connection -------------------------------------------------------------


async def test_cancelled_caller_keeps_replies_in_order(store: Store,
                                                       redis_client: redis.Redis) -> None:
    redis_client.set("lr:a", "A")
    redis_client.set("lr:b", "B")
    await store.ping()
    slow = asyncio.ensure_future(store.wire.call("GET", "lr:a"))
    await asyncio.sleep(0)  # written, reply not read yet
    slow.cancel()
    results = await asyncio.gather(*(store.wire.call("GET", k) for k in ["lr:b", "lr:a"] * 50))
    assert results == [b"B", b"A"] * 50


async def test_silent_server_times_out_as_state_unavailable() -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)
        await asyncio.sleep(5)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(StateUnavailable, match="unavailable"):
            await Store.connect(f"redis://127.0.0.1:{port}/0", timeout=0.2)
    finally:
        server.close()


def test_url_forms() -> None:
    from router.state.wire import Wire

    w = Wire("redis://user:p%40ss@example.com:6380/3")
    assert (w.host, w.port, w.db, w.username, w.password, w.ssl) == (
        "example.com", 6380, 3, "user", "p@ss", None)
    assert Wire("rediss://h").ssl is not None and Wire("redis://h").port == 6379
    u = Wire("unix:///run/valkey.sock?db=2")
    assert (u.unix_path, u.db) == ("/run/valkey.sock", 2)
    with pytest.raises(ValueError, match="scheme"):
        Wire("http://h")


# -- optimistic reads ------------------------------------------------------------------------


async def test_an_optimistic_prefetch_guesses_and_the_commit_checks(store: Store,
                                                                    redis_client: Any) -> None:
    await store.ping()
    start = store.round_trips
    guess = await store.prefetch(account_domain="acme.com", optimistic=True)
    assert store.round_trips == start  # nothing read: decided on "no owner"
    assert guess.account_owner is None and len(guess.guards) == 1
    done = await store.commit(plan("L1", guards=guess.guards))
    assert done.status == "assigned" and store.round_trips == start + 1

    # The account gets an owner: the same guess is now stale and the commit writes nothing.
    await store.put_account("acme.com", "b")
    before = redis_client.hgetall("lr:{lr}:pool:p")
    guess = await store.prefetch(account_domain="acme.com", optimistic=True)
    stale = await store.commit(plan("L2", guards=guess.guards))
    assert stale.status == "stale" and not stale.committed
    assert redis_client.exists("lr:{lr}:lead:L2", "lr:{lr}:lead:L2:history") == 0
    assert redis_client.hgetall("lr:{lr}:pool:p") == before  # no pick counted
    fresh = guess.reread(stale.reads)
    assert fresh.account_owner == "b" and fresh.guards == ()
    assert (await store.commit(plan("L2", guards=fresh.guards))).status == "assigned"

    # What the stale commit found is the next guess, and it holds until the owner changes.
    guess = await store.prefetch(account_domain="acme.com", optimistic=True)
    assert guess.account_owner == "b"
    assert (await store.commit(plan("L3", guards=guess.guards))).status == "assigned"
    await store.delete_account("acme.com")
    stale = await store.commit(plan("L4", guards=guess.guards))
    assert stale.status == "stale" and guess.reread(stale.reads).account_owner is None


async def test_claims_and_the_setting_off_always_read_first(store: Store) -> None:
    await store.put_account("acme.com", "a")
    await store.ping()
    start = store.round_trips
    keyed = await store.prefetch([claim("k-opt", "L1")], account_domain="acme.com",
                                 optimistic=True)
    assert keyed.guards == () and keyed.account_owner == "a"
    plain = await store.prefetch(account_domain="acme.com")
    assert plain.guards == () and plain.account_owner == "a"
    assert store.round_trips == start + 2



class _PersonLike:
    """An HMGET extra read whose first field is a version, like a person's engagement."""

    def commands(self, keys: Keys) -> list[tuple[str, ...]]:
        return [("HMGET", keys.person("p1"), "seq", "traits")]

    def parse(self, replies: list[Any]) -> tuple[Any, ...]:
        return tuple(replies[0])


async def test_a_persons_hash_is_checked_but_never_remembered(store: Store,
                                                             redis_client: Any) -> None:
    # Traits are personal data: after an erasure they must not live on in a worker's memory,
    # so every guess for a person is "nothing", whatever was read or found before.
    redis_client.hset("lr:{lr}:person:p1", mapping={"seq": "4", "traits": '{"name": "Pat"}'})
    read_first = await store.prefetch([claim("k-p1", "L1")], extra=[_PersonLike()],
                                      optimistic=True)
    assert read_first.extra == ((b"4", b'{"name": "Pat"}'),)
    await store.release(read_first.owned_claims)
    guess = await store.prefetch(extra=[_PersonLike()], optimistic=True)
    assert guess.extra == ((None, None),) and guess.guards[0].seen is None
    stale = await store.commit(plan("L2", guards=guess.guards))
    assert stale.status == "stale"
    assert guess.reread(stale.reads).extra == ((b"4", b'{"name": "Pat"}'),)
    again = await store.prefetch(extra=[_PersonLike()], optimistic=True)
    assert again.extra == ((None, None),)
