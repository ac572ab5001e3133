"""Cluster mode, all real: a Valkey cluster of 3 primaries + 3 replicas on loopback
(tests/_ha.py). The connection goes to the primary of the deployment's one slot
(router/state/_cluster.py), follows ``MOVED`` after a failover and ``ASK`` during a slot
migration; two prefixes land on different shards and both serve; and — the long one, marked
``failover`` — ``kill -9`` of the slot's primary under load loses no acknowledged lead."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import redis
from _ha import GIVE_UP, Load, Server, cluster_shards, slot_primary, start_cluster
from _service import RawClient, ServiceProcess, lead, write_rules

from router.engine.availability import MemberPlan, PoolPlan
from router.state import CommitPlan, Store
from router.state._cluster import key_slot, parse_cluster_url
from router.state.keys import Keys, hash_tag
from router.state.wire import Wire

DAY = "2026-03-02"
NOW = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
POOL = PoolPlan(id="p", strategy="round_robin", pool_cap=-1, day=DAY,
                members=(MemberPlan("a", 1, True, DAY, -1), MemberPlan("b", 1, True, DAY, -1)))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> list[Server]:
    nodes = start_cluster(tmp_path_factory.mktemp("cluster"))
    yield nodes  # type: ignore[misc]
    for node in nodes:
        node.stop()


def _url(nodes: list[Server], scheme: str = "redis+cluster") -> str:
    return f"{scheme}://" + ",".join(f"127.0.0.1:{n.port}" for n in nodes[:2])


def _node(nodes: list[Server], port: int) -> Server:
    return next(n for n in nodes if n.port == port)


def _other_shard_prefix(nodes: list[Server], prefix: str) -> str:
    """A prefix whose slot a different primary serves than ``prefix``'s."""
    mine = slot_primary(nodes[0], key_slot(hash_tag(prefix)))
    for n in range(100):
        candidate = f"t{n}:"
        if slot_primary(nodes[0], key_slot(hash_tag(candidate))) != mine:
            return candidate
    raise AssertionError("no prefix on another shard")


def test_cluster_urls_and_the_slot_of_a_tag() -> None:
    target = parse_cluster_url("rediss+cluster://u:p%40ss@h1:7000,h2,[::1]:7002")
    assert target.nodes == [("h1", 7000), ("h2", 6379), ("::1", 7002)]
    assert (target.username, target.password, target.tls) == ("u", "p@ss", True)
    for bad in ("redis+cluster://", "redis+cluster://h1/3", "redis+sentinel://h/m"):
        with pytest.raises(ValueError, match="redis\\+cluster://"):
            parse_cluster_url(bad)
    for key in ("lr", "acme", "lr:{lr}:lead:x", "a{}b", "{}", "x{y"):  # as the server hashes
        assert key_slot(key) == redis.crc.key_slot(key.encode()), key
    assert key_slot("lr:{lr}:lead:1") == key_slot("lr:{lr}:sla:due") == key_slot("lr")


@pytest.mark.anyio
async def test_the_store_runs_every_commit_on_the_slots_primary(cluster: list[Server]) -> None:
    store = await Store.connect(_url(cluster), prefix="lr:")
    try:
        result = await store.commit(CommitPlan(lead_id="C1", now=NOW, kind="pool",
                                               decision=b"{}", chain=(POOL,)))
        assert (result.status, result.owner) == ("assigned", "a")
        queued = await store.commit(CommitPlan(lead_id="C2", now=NOW, kind="queue",
                                               queue="triage", decision=b"{}"))
        assert queued.status == "queued"
    finally:
        await store.close()
    k = Keys("lr:")
    owner = _node(cluster, slot_primary(cluster[0], key_slot("lr")) or 0)
    assert owner.client().exists(k.lead("C1"), k.history("C1"), k.rep_open("a"),
                                 k.queue("triage"), k.lead("C2")) == 5


@pytest.mark.anyio
async def test_moved_after_a_manual_failover_and_ask_during_a_migration_are_followed(
        tmp_path: Path) -> None:
    nodes = start_cluster(tmp_path / "c")
    try:
        slot = key_slot("mv")
        wire = Wire(_url(nodes), hash_tag="mv")
        await wire.call("SET", "x:{mv}:a", "1")
        primary = _node(nodes, slot_primary(nodes[0], slot) or 0)
        replica = _node(nodes, next(r for a, b, _, rs in cluster_shards(nodes[0])
                                    if a <= slot <= b for r in rs))
        replica.client().execute_command("CLUSTER", "FAILOVER")
        deadline = time.monotonic() + 10
        while slot_primary(primary, slot) != replica.port:
            assert time.monotonic() < deadline, "manual failover did not happen"
            await asyncio.sleep(0.05)
        # The connection still points at the old primary, now a replica: MOVED, followed.
        assert await wire.call("GET", "x:{mv}:a") == b"1"
        assert await wire.call("INCR", "x:{mv}:n") == 1
        assert wire.redirections >= 1 and wire.failovers == 1

        # A slot being migrated: a key not on the source yet is answered ASK; the wire asks the
        # target once (ASKING) and keeps its connection to the source.
        target = next(n for n in nodes[:3] if n.port != replica.port)
        ids = {n.port: n.client().execute_command("CLUSTER", "MYID").decode() for n in nodes}
        target.client().execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[replica.port])
        replica.client().execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target.port])
        before = wire.redirections
        assert await wire.call("SET", "x:{mv}:new", "2") == b"OK"
        assert wire.redirections == before + 1
        assert target.client().execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 1
        assert await wire.call("GET", "x:{mv}:a") == b"1"  # still on the source: no redirect
        assert wire.redirections == before + 1
        await wire.close()
    finally:
        for node in nodes:
            node.stop()


def _serve(tmp_path: Path, nodes: list[Server], prefix: str, name: str,
           **env: str) -> ServiceProcess:
    return ServiceProcess(
        rules_dir=write_rules(tmp_path / f"rules-{name}"), log_path=tmp_path / f"{name}.log",
        redis_url=f"redis://127.0.0.1:{nodes[1].port}",
        env={"LEADROUTER_REDIS_CLUSTER": "true", "LEADROUTER_KEY_PREFIX": prefix,
             "LEADROUTER_ACCESS_LOG": "false", **env})


def test_two_prefixes_land_on_different_shards_and_both_serve(
        tmp_path: Path, cluster: list[Server]) -> None:
    other = _other_shard_prefix(cluster, "lr:")
    services = [_serve(tmp_path, cluster, p, p.rstrip(":")) for p in ("lr:", other)]
    try:
        for service in services:
            service.launch()
        stored = {}
        for prefix, service in zip(("lr:", other), services, strict=True):
            service.wait_ready(60)
            with httpx.Client(base_url=service.url, timeout=10) as client:
                created = client.post("/v1/leads", json=lead())
                assert created.status_code == 201, created.text
                lead_id = created.json()["lead_id"]
                assert client.get(f"/v1/leads/{lead_id}").status_code == 200
            stored[prefix] = (Keys(prefix).lead(lead_id),
                              slot_primary(cluster[0], key_slot(hash_tag(prefix))))
        (key_a, port_a), (key_b, port_b) = stored.values()
        assert port_a != port_b  # two shards
        assert _node(cluster, port_a or 0).client().exists(key_a) == 1
        assert _node(cluster, port_b or 0).client().exists(key_b) == 1
        with pytest.raises(redis.exceptions.MovedError):  # not that shard's slot
            _node(cluster, port_a or 0).client().exists(key_b)
    finally:
        for service in services:
            service.stop()


RATE = 200  # leads per second, bounded
KILL_AFTER = 3.0
KEEP_AFTER_RECOVERY = 2.0


async def _load(service: ServiceProcess, nodes: list[Server], victim: Server, slot: int,
                load: Load) -> dict[str, float]:
    """Leads at RATE/s; after KILL_AFTER seconds ``kill -9`` of the slot's primary; once a
    replica took the slot over, the killed node is started again (as a supervisor would) and
    rejoins as its replica, so WAIT 1 can be met again."""
    tasks: list[asyncio.Task[None]] = []
    marks: dict[str, float] = {"ready_503": 0}
    witness = next(n for n in nodes if n is not victim)
    start, i = time.monotonic(), 0
    async with httpx.AsyncClient(base_url=service.url, timeout=5) as probe:
        while True:
            now = time.monotonic()
            if load.killed_at is None and now - start >= KILL_AFTER:
                victim.proc.send_signal(signal.SIGKILL)
                victim.proc.wait()
                load.killed_at = marks["kill"] = time.monotonic()
            if load.killed_at is not None:
                if "promoted" not in marks and i % 20 == 0 and \
                        slot_primary(witness, slot) not in (None, victim.port):
                    marks["promoted"] = time.monotonic()
                    victim.proc = subprocess.Popen(victim.args, stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.STDOUT)
                if i % 20 == 0 and load.recovered_at is None and \
                        (await probe.get("/readyz")).status_code == 503:
                    marks["ready_503"] += 1
                if load.recovered_at is not None and \
                        now - load.recovered_at >= KEEP_AFTER_RECOVERY:
                    break
                if now - load.killed_at > GIVE_UP:
                    break
            key = f"hc-{i}"
            tasks.append(asyncio.create_task(load.one(key, lead(email=f"c{i}@ha.example"))))
            i += 1
            await asyncio.sleep(max(0.0, start + i / RATE - time.monotonic()))
        await asyncio.gather(*tasks)
    return marks


@pytest.mark.slow
@pytest.mark.failover
def test_kill_9_of_the_slots_primary_loses_no_acknowledged_lead(tmp_path: Path) -> None:
    nodes = start_cluster(tmp_path / "c")
    slot = key_slot(hash_tag("lr:"))
    victim = _node(nodes, slot_primary(nodes[0], slot) or 0)
    service = _serve(tmp_path, nodes, "lr:", "svc", LEADROUTER_REDIS_WAIT_REPLICAS="1",
                     LEADROUTER_REDIS_WAIT_TIMEOUT_MS="1000", LEADROUTER_RETRY_AFTER_SECONDS="1",
                     LEADROUTER_METRICS_FLUSH_SECONDS="0.2")
    service.args[service.args.index("--workers") + 1] = "2"
    try:
        service.start()

        async def main() -> tuple[Load, dict[str, float]]:
            client = RawClient("127.0.0.1", service.port, connections=64)
            load = Load(client)
            try:
                return load, await _load(service, nodes, victim, slot, load)
            finally:
                await client.aclose()

        load, marks = asyncio.run(main())
        assert load.recovered_at is not None and load.killed_at is not None, \
            f"did not recover within {GIVE_UP}s: {load.statuses} {load.bad[:5]}\n" \
            f"{service.log_tail()}"
        print(f"\ncluster failover: 201s again {load.recovered_at - load.killed_at:.2f}s after "
              f"kill -9 of the slot's primary, "
              f"{load.recovered_at - marks.get('promoted', load.recovered_at):.2f}s after the "
              f"replica took the slot over (the killed node restarted then); "
              f"{sum(load.statuses.values())} answers {load.statuses}, "
              f"{load.transport_errors} transport errors, {len(load.acked)} leads")
        assert load.bad == [], load.bad[:10]  # no 5xx other than 503, every lead acknowledged
        assert set(load.statuses) <= {200, 201, 503}, load.statuses
        assert load.statuses.get(503, 0) > 0 and marks["ready_503"] > 0  # the kill was felt
        twice = {k: ids for k, ids in load.acked.items() if len(ids) != 1}
        assert twice == {}, f"keys answered with different leads: {list(twice.items())[:5]}"
        acknowledged = {next(iter(ids)) for ids in load.acked.values()}
        now_primary = _node(nodes, slot_primary(nodes[0], slot) or 0)
        assert now_primary is not victim
        base = Keys("lr:").base + "lead:"
        stored = {k.decode()[len(base):] for k in now_primary.client()
                  .scan_iter(match=base + "*", count=5000) if not k.endswith(b":history")}
        assert acknowledged - stored == set(), "acknowledged leads lost"
        assert stored - acknowledged == set(), "leads stored that nobody was answered"
        metrics = httpx.get(f"{service.url}/metrics", timeout=10).text
        assert "leadrouter_redis_failovers_total" in metrics
    finally:
        service.stop()
        for node in nodes:
            node.stop()
