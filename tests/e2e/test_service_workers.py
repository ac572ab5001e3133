"""Two service processes sharing one Redis, under hundreds of concurrent leads.

Two ``leadrouter serve`` processes on two ports (so every other request is certainly handled by
the other process) share one valkey-server. Their assignments must be exactly what one process
would do: round-robin exact, weighted shares as weighted, caps never exceeded, no lead routed
twice, idempotent duplicates routed once. Then: an admin reload in one process is picked up by
the other through the shared generation counter, and rule-file edits by both through polling.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import redis
from _service import AUTH, RawClient, ServiceProcess, lead, write_rules

from router.state.embedded import EmbeddedValkey

pytestmark = pytest.mark.slow

N_RR, N_WRR, N_CAPPED = 300, 180, 100  # 580 distinct leads
N_KEYED, KEYED_COPIES = 120, 3  # leads sent 3 times with the same Idempotency-Key
N_EXT, EXT_COPIES = 60, 2  # leads sent twice with the same external_id
CONCURRENCY = 64
CAP = 40  # pool `capped`: daily_cap per member


class Pair:
    def __init__(self, a: ServiceProcess, b: ServiceProcess, rules_dir: Path,
                 redis_url: str) -> None:
        self.services = (a, b)
        self.urls = (a.url, b.url)
        self.rules_dir = rules_dir
        self.redis_url = redis_url


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("workers")
    valkey = EmbeddedValkey(root / "valkey")
    valkey.start()
    rules_dir = write_rules(root / "rules")
    env = {"LEADROUTER_RELOAD_POLL_SECONDS": "0.2"}
    services = [ServiceProcess(rules_dir=rules_dir, redis_url=valkey.url, env=env,
                               log_path=root / f"serve-{i}.log") for i in range(2)]
    try:
        for service in services:
            service.launch()
        for service in services:
            service.wait_ready(60)
        yield Pair(services[0], services[1], rules_dir, valkey.url)
    finally:
        for service in services:
            service.__exit__(None, None, None)
        valkey.stop()


def _leads() -> list[dict[str, Any]]:
    out = []
    for i in range(N_RR + N_WRR + N_CAPPED):
        campaign = None if i < N_RR else "wrr" if i < N_RR + N_WRR else "capped"
        out.append(lead(email=f"person{i}@company{i}.example", company=f"Company {i}",
                        campaign=campaign))
    return out


def _clients(urls: tuple[str, ...]) -> list[RawClient]:
    ports = [int(url.rsplit(":", 1)[1]) for url in urls]
    return [RawClient("127.0.0.1", port, CONCURRENCY // len(urls)) for port in ports]


async def _send_all(urls: tuple[str, str],
                    requests: list[tuple[int, dict[str, Any], dict[str, str]]],
                    ) -> list[tuple[int, int, dict[str, Any], int]]:
    """Send everything with CONCURRENCY requests in flight, alternating between the two
    processes; a 409 (same key in flight) is retried. Returns (lead index, status, body,
    how many 409s it met)."""
    clients = _clients(urls)
    semaphore = anyio.Semaphore(CONCURRENCY)
    results: list[tuple[int, int, dict[str, Any], int]] = []

    async def one(n: int, index: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        conflicts = 0
        async with semaphore:
            for attempt in range(200):
                client = clients[(n + attempt) % 2]
                response = await client.post("/v1/leads", json=body, headers=headers)
                if response.status_code != 409:
                    break
                conflicts += 1
                await anyio.sleep(0.02)
        results.append((index, response.status_code, response.json(), conflicts))

    try:
        async with anyio.create_task_group() as tg:
            for n, (index, body, headers) in enumerate(requests):
                tg.start_soon(one, n, index, body, headers)
    finally:
        for client in clients:
            await client.aclose()
    return results


def _lead_hashes(client: redis.Redis) -> int:
    return sum(1 for k in client.scan_iter(match="lr:{lr}:lead:*", count=1000)
               if not k.endswith(b":history"))


@pytest.mark.anyio
async def test_two_processes_route_500_concurrent_leads_exactly(pair: Pair) -> None:
    leads = _leads()
    rng = random.Random(20261124)
    keyed = set(rng.sample(range(len(leads)), N_KEYED))
    ext = set(rng.sample(sorted(set(range(len(leads))) - keyed), N_EXT))
    requests: list[tuple[int, dict[str, Any], dict[str, str]]] = []
    for i, body in enumerate(leads):
        if i in keyed:
            requests += [(i, body, {"Idempotency-Key": f"key-{i}"})] * KEYED_COPIES
        elif i in ext:
            requests += [(i, {**body, "external_id": f"crm-{i}"}, {})] * EXT_COPIES
        else:
            requests.append((i, body, {}))
    rng.shuffle(requests)
    assert len(requests) >= 500

    start = time.monotonic()
    results = await _send_all(pair.urls, requests)
    elapsed = time.monotonic() - start
    assert len(results) == len(requests)

    # every request succeeded: 201 for the first of each lead, 200 (duplicate) for the others
    by_lead: dict[int, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for index, status, body, _ in results:
        assert status in (200, 201), (status, body)
        by_lead[index].append((status, body))
    created: dict[int, dict[str, Any]] = {}
    for index, responses in by_lead.items():
        statuses = sorted(s for s, _ in responses)
        assert statuses.count(201) == 1, (index, statuses)  # routed exactly once
        ids = {b["lead_id"] for _, b in responses}
        assert len(ids) == 1, (index, ids)  # every copy names the same lead
        assert all(b["duplicate"] == (s == 200) for s, b in responses)
        created[index] = next(b for s, b in responses if s == 201)
    assert len(created) == len(leads)
    assert len({d["lead_id"] for d in created.values()}) == len(leads)

    owners: dict[str, Counter[str]] = defaultdict(Counter)
    queued: Counter[str] = Counter()
    days: dict[str, Counter[str]] = defaultdict(Counter)
    for d in created.values():
        a = d["assignment"]
        if a["owner"]:
            owners[a["pool"]][a["owner"]] += 1
            days[d["created_at"][:10]][a["owner"]] += 1
        else:
            queued[a["queue"]] += 1

    # round robin: exact
    rr = owners["rr"]
    assert set(rr) == {"r1", "r2", "r3"} and sum(rr.values()) == N_RR
    assert max(rr.values()) - min(rr.values()) <= 1, rr
    # smooth weighted round robin 3:2:1: within one lead of the exact share
    wrr = owners["wrr"]
    assert sum(wrr.values()) == N_WRR
    for rep, weight in (("w1", 3), ("w2", 2), ("w3", 1)):
        assert abs(wrr[rep] - N_WRR * weight / 6) <= 1, wrr
    # caps: no rep over its daily cap on any day; the rest overflowed to the queue
    capped = owners["capped"]
    for day, counts in days.items():
        for rep in ("c1", "c2"):
            assert counts[rep] <= CAP, (day, counts)
    assert sum(capped.values()) + queued["capped-overflow"] == N_CAPPED
    if len(days) == 1:  # (the run did not straddle midnight UTC)
        assert capped == {"c1": CAP, "c2": CAP}, capped
        assert queued == {"capped-overflow": N_CAPPED - 2 * CAP}, queued

    # the service agrees with what the clients saw, and nothing was stored twice
    for pool, expected in (("rr", rr), ("wrr", wrr), ("capped", capped)):
        stats = httpx.get(f"{pair.urls[1]}/v1/pools/{pool}", timeout=10).json()
        got = {m["rep"]: m["assigned_in_pool"] for m in stats["members"]}
        assert got == {rep: expected.get(rep, 0) for rep in got}, (pool, stats)
        if len(days) == 1 and pool == "capped":
            assert all(not m["eligible"] and m["assigned_today"] == CAP
                       for m in stats["members"]), stats

    clients = _clients(pair.urls)
    semaphore = anyio.Semaphore(CONCURRENCY)
    histories: dict[str, list[str]] = {}

    async def history(n: int, d: dict[str, Any]) -> None:
        async with semaphore:
            response = await clients[n % 2].get(f"/v1/leads/{d['lead_id']}")
        stored = response.json()
        assert stored["assignment"]["owner"] == d["assignment"]["owner"]
        histories[d["lead_id"]] = [h["event"] for h in stored["history"]]

    try:
        async with anyio.create_task_group() as tg:
            for n, d in enumerate(created.values()):
                tg.start_soon(history, n, d)
    finally:
        for client in clients:
            await client.aclose()
    assert len(histories) == len(leads)
    for lead_id, events in histories.items():
        assert events in (["created", "assigned"], ["created", "queued"]), (lead_id, events)

    with redis.Redis.from_url(pair.redis_url) as client:
        assert _lead_hashes(client) == len(leads)
        for key in client.scan_iter(match="lr:{lr}:rep:c*:day:*"):
            assert int(client.get(key) or 0) <= CAP, key

    # retries after the fact return the stored decision, from either process
    again = await _send_all(pair.urls, [r for r in requests if r[0] in keyed][::KEYED_COPIES])
    for index, status, body, _ in again:
        assert status == 200 and body["lead_id"] == created[index]["lead_id"]
    print(f"\n{len(requests)} requests, {len(leads)} leads in {elapsed:.1f}s "
          f"({len(requests) / elapsed:.0f} req/s), "
          f"{sum(c for *_, c in results)} in-flight conflicts retried")


def _versions(urls: tuple[str, ...]) -> list[str]:
    return [httpx.get(f"{url}/v1/rules", timeout=10).json()["version"] for url in urls]


def _wait_versions(urls: tuple[str, ...], want: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (versions := _versions(urls)) != [want] * len(urls):
        assert time.monotonic() < deadline, f"not converged on {want[:12]}: {versions}"
        time.sleep(0.05)


def test_every_process_converges_on_reloaded_rules(pair: Pair) -> None:
    scoring = pair.rules_dir / "scoring.yaml"
    original = scoring.read_text()
    before = _versions(pair.urls)
    assert before[0] == before[1]
    try:
        # An edit that keeps size and mtime (think: a ConfigMap swap): no poller can see it...
        stat = scoring.stat()
        edited = original.replace("budget >= 50000", "budget >= 40000")
        assert len(edited) == len(original)
        scoring.write_text(edited)
        os.utime(scoring, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        time.sleep(0.6)  # three poll intervals
        assert _versions(pair.urls) == before
        # ...until an admin reload in process A, which tells B through Redis
        response = httpx.post(f"{pair.urls[0]}/v1/admin/rules/reload", headers=AUTH)
        assert response.status_code == 200, response.text
        new = response.json()["version"]
        assert new != before[0]
        _wait_versions(pair.urls, new, timeout=5)
        decision = httpx.post(f"{pair.urls[1]}/v1/leads", json=lead(budget=45000)).json()
        assert decision["rules_version"] == new and decision["score"]["bant"] == 20
        status = httpx.get(f"{pair.urls[1]}/v1/rules").json()
        assert status["last_reload"]["reason"] == "generation"

        # an ordinary edit is picked up by both pollers, no admin call needed
        scoring.write_text(original)
        _wait_versions(pair.urls, before[0], timeout=10)
        decision = httpx.post(f"{pair.urls[0]}/v1/leads", json=lead(budget=45000)).json()
        assert decision["rules_version"] == before[0] and decision["score"]["bant"] == 0

        # a broken edit is rejected by both, and both keep serving the good version
        scoring.write_text(original.replace("employees >= 1000", "employees >>= 1000"))
        deadline = time.monotonic() + 10
        for url in pair.urls:
            while not httpx.get(f"{url}/v1/rules").json()["last_rejected"]:
                assert time.monotonic() < deadline, "broken rules not noticed"
                time.sleep(0.05)
        assert _versions(pair.urls) == before
    finally:
        scoring.write_text(original)
        _wait_versions(pair.urls, before[0], timeout=10)
