"""Sentinel failover under load, all real: a valkey primary, two replicas and three sentinels
on loopback, ``leadrouter serve`` with 2 workers on ``redis+sentinel://`` and
LEADROUTER_REDIS_WAIT_REPLICAS=1, a steady stream of leads over HTTP — and ``kill -9`` of the
primary. Every lead acknowledged (201, or 200 for a retry) must be readable afterwards, no
Idempotency-Key may produce two leads, no answer may be a 5xx other than 503, and the service
must answer 201 again after the promotion without a restart (the time is printed; the only
bound is a generous "did not recover").

A second scenario checks that the background loops resume by themselves after the promotion,
in the same worker processes: the SLA worker breaches a lead whose deadline falls after the
failover, the outbox delivers its events to a webhook receiver, and a rules file changed after
the failover is served by both workers.

Two replicas, not one: with WAIT 1, the promoted replica needs a replica of its own for commits
to be acknowledged again (with one, every lead after the failover would be a 503 until the old
primary came back). ``-m "not failover"`` skips this test locally (README, "Tests").
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from _ha import GIVE_UP, Load, Server, replicas_acking, sentinel_primary, until, valkey_binary
from _service import AUTH, RawClient, ServiceProcess, lead, write_rules
from leadrouter_webhook.receiver import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.failover]

MASTER = "leadmaster"
RATE = 200  # leads per second, bounded
KILL_AFTER = 3.0  # seconds of load before the kill
KEEP_AFTER_RECOVERY = 2.0


def _topology(tmp_path: Path) -> tuple[Server, list[Server], list[Server]]:
    binary = valkey_binary()
    primary = Server(binary, tmp_path / "primary", ["maxmemory-policy noeviction"])
    primary.wait_listening()
    replicas = [Server(binary, tmp_path / f"replica{i}",
                       [f"replicaof 127.0.0.1 {primary.port}", "maxmemory-policy noeviction"])
                for i in range(2)]
    sentinels = [Server(binary, tmp_path / f"sentinel{i}", [
        f"sentinel monitor {MASTER} 127.0.0.1 {primary.port} 2",
        f"sentinel down-after-milliseconds {MASTER} 500",
        f"sentinel failover-timeout {MASTER} 5000"], sentinel=True) for i in range(3)]
    for server in (*replicas, *sentinels):
        server.wait_listening()
    deadline = time.monotonic() + 20
    while True:  # replicas in sync, sentinels know the replicas and each other
        info = primary.client().info("replication")
        online = sum(1 for i in range(2) if info.get(f"slave{i}", {}).get("state") == "online")
        fields = [s.client().sentinel_master(MASTER) for s in sentinels]
        if online == 2 and all(int(f["num-slaves"]) == 2 and int(f["num-other-sentinels"]) == 2
                               for f in fields):
            replicas_acking(primary, 2)
            return primary, replicas, sentinels
        assert time.monotonic() < deadline, f"topology not ready: {online} {fields}"
        time.sleep(0.1)


async def _run(service: ServiceProcess, primary: Server, sentinels: list[Server],
               load: Load) -> dict[str, float]:
    tasks: list[asyncio.Task[None]] = []
    ready: list[tuple[float, int]] = []
    marks: dict[str, float] = {}
    start = time.monotonic()
    i = 0
    async with httpx.AsyncClient(base_url=service.url, timeout=5) as probe:
        while True:
            now = time.monotonic()
            if load.killed_at is None and now - start >= KILL_AFTER:
                primary.proc.send_signal(signal.SIGKILL)
                primary.proc.wait()
                load.killed_at = marks["kill"] = time.monotonic()
            if load.killed_at is not None:
                if "promoted" not in marks and i % 20 == 0 and \
                        sentinel_primary(sentinels[0], MASTER) not in (None, ("127.0.0.1",
                                                                            primary.port)):
                    marks["promoted"] = time.monotonic()
                if i % 20 == 0 and load.recovered_at is None:
                    ready.append((now, (await probe.get("/readyz")).status_code))
                if load.recovered_at is not None and \
                        now - load.recovered_at >= KEEP_AFTER_RECOVERY:
                    break
                if now - load.killed_at > GIVE_UP:
                    break
            key = f"ha-{i}"
            tasks.append(asyncio.create_task(load.one(key, lead(email=f"p{i}@ha.example"))))
            i += 1
            await asyncio.sleep(max(0.0, start + i / RATE - time.monotonic()))
        await asyncio.gather(*tasks)
    marks["ready_503"] = sum(1 for _, s in ready if s == 503)
    return marks


def test_kill_9_of_the_primary_loses_no_acknowledged_lead(tmp_path: Path) -> None:
    primary, replicas, sentinels = _topology(tmp_path)
    url = "redis+sentinel://" + ",".join(f"127.0.0.1:{s.port}" for s in sentinels) + f"/{MASTER}"
    service = ServiceProcess(
        rules_dir=write_rules(tmp_path / "rules"), log_path=tmp_path / "service.log",
        redis_url=url, workers=2,
        env={"LEADROUTER_REDIS_WAIT_REPLICAS": "1", "LEADROUTER_REDIS_WAIT_TIMEOUT_MS": "1000",
             "LEADROUTER_RETRY_AFTER_SECONDS": "1", "LEADROUTER_ACCESS_LOG": "false",
             "LEADROUTER_METRICS_FLUSH_SECONDS": "0.2"})
    try:
        service.start()

        async def main() -> tuple[Load, dict[str, float]]:
            client = RawClient("127.0.0.1", service.port, connections=64)
            load = Load(client)
            try:
                return load, await _run(service, primary, sentinels, load)
            finally:
                await client.aclose()

        load, marks = asyncio.run(main())
        assert load.recovered_at is not None and load.killed_at is not None, \
            f"did not recover within {GIVE_UP}s: {load.statuses} {load.bad[:5]}\n" \
            f"{service.log_tail()}"
        after_kill = load.recovered_at - load.killed_at
        after_promotion = load.recovered_at - marks.get("promoted", load.recovered_at)
        print(f"\nfailover: 201s again {after_kill:.2f}s after kill -9 of the primary, "
              f"{after_promotion:.2f}s after the sentinels named the new one; "
              f"{sum(load.statuses.values())} answers {load.statuses}, "
              f"{load.transport_errors} transport errors, {len(load.acked)} leads")

        assert load.bad == [], load.bad[:10]  # no 5xx other than 503, every lead acknowledged
        assert set(load.statuses) <= {200, 201, 503}, load.statuses
        assert load.statuses.get(503, 0) > 0  # the kill was felt
        assert marks["ready_503"] > 0  # /readyz said not ready during the failover
        twice = {k: ids for k, ids in load.acked.items() if len(ids) != 1}
        assert twice == {}, f"keys answered with different leads: {list(twice.items())[:5]}"
        acknowledged = {next(iter(ids)) for ids in load.acked.values()}

        new = sentinel_primary(sentinels[0], MASTER)
        assert new is not None and new[1] != primary.port
        now_primary = redis.Redis(host=new[0], port=new[1], socket_timeout=10)
        stored = {k.decode()[len("lr:{lr}:lead:"):]
                  for k in now_primary.scan_iter(match="lr:{lr}:lead:*", count=5000)
                  if not k.endswith(b":history")}
        assert acknowledged - stored == set(), "acknowledged leads lost"
        assert stored - acknowledged == set(), "leads stored that nobody was answered"

        async def read_back() -> list[int]:
            client = RawClient("127.0.0.1", service.port, connections=16)
            try:
                ids = sorted(acknowledged)
                sem = asyncio.Semaphore(16)

                async def get(lead_id: str) -> int:
                    async with sem:
                        return (await client.get(f"/v1/leads/{lead_id}")).status_code
                return list(await asyncio.gather(*(get(x) for x in ids)))
            finally:
                await client.aclose()

        assert set(asyncio.run(read_back())) == {200}
        time.sleep(0.5)
        text = httpx.get(f"{service.url}/metrics", timeout=10).text
        failovers = re.search(r"^leadrouter_redis_failovers_total (\S+)$", text, re.M)
        assert failovers and float(failovers.group(1)) >= 1, text[:2000]
    finally:
        service.kill()
        for server in (*sentinels, *replicas, primary):
            server.stop()


SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
FAST_SLA = """\
sla:
  - {id: sla-fast, when: 'true', accept_within: %s, clock: wall, on_breach: notify}
"""


def _status(url: str) -> dict[str, Any] | None:
    """``GET /v1/status`` on a new connection (either worker may take it); None if no 200."""
    try:
        response = httpx.get(f"{url}/v1/status", timeout=5)
    except httpx.TransportError:
        return None
    body: dict[str, Any] | None = response.json() if response.status_code == 200 else None
    return body


def _worker_pids(url: str) -> set[int]:
    """The pids of the two workers, from answers on new connections."""
    pids: set[int] = set()

    def both() -> bool:
        body = _status(url)
        if body is not None:
            pids.add(body["pid"])
        return len(pids) >= 2
    until(both, "both workers answering", timeout=15, every=0.02)
    return pids


def _versions_by_pid(url: str, pids: set[int], want: str) -> bool:
    """Poll until every worker in ``pids`` answered with rules version ``want``."""
    seen: dict[int, str] = {}
    deadline = time.monotonic() + GIVE_UP
    while time.monotonic() < deadline:
        body = _status(url)
        if body is not None:
            seen[body["pid"]] = body["rules"]["version"]
            if all(seen.get(pid) == want for pid in pids):
                return True
        time.sleep(0.05)
    raise AssertionError(f"workers did not all serve rules {want[:12]} within {GIVE_UP}s: "
                         f"{ {pid: v[:12] for pid, v in seen.items()} }")


def _log_records(service: ServiceProcess) -> list[dict[str, Any]]:
    lines = service.log_path.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith('{"ts"')]


def _events(receiver: Receiver, lead_id: str) -> list[str]:
    return [r.json()["type"] for r in receiver.delivered()
            if r.json()["data"].get("lead_id") == lead_id]


def _post_until_201(url: str) -> dict[str, Any]:
    def attempt() -> dict[str, Any] | None:
        try:
            response = httpx.post(f"{url}/v1/leads", json=lead(email="after@ha.example"),
                                  headers={"Idempotency-Key": "after-failover"}, timeout=5)
        except httpx.TransportError:
            return None
        assert response.status_code in (200, 201, 503), (response.status_code, response.text)
        body: dict[str, Any] | None = \
            response.json() if response.status_code in (200, 201) else None
        return body
    posted: dict[str, Any] = until(attempt, "a lead acknowledged after the promotion")
    return posted


def test_background_loops_resume_after_failover_without_restart(tmp_path: Path) -> None:
    primary, replicas, sentinels = _topology(tmp_path)
    url = "redis+sentinel://" + ",".join(f"127.0.0.1:{s.port}" for s in sentinels) + f"/{MASTER}"
    rules = write_rules(tmp_path / "rules", {"sla.yaml": FAST_SLA % "2s"})
    receiver = Receiver(SECRET).start()
    service = ServiceProcess(
        rules_dir=rules, log_path=tmp_path / "service.log", redis_url=url, workers=2,
        env={"LEADROUTER_RETRY_AFTER_SECONDS": "1", "LEADROUTER_ACCESS_LOG": "false",
             "LEADROUTER_SLA_POLL_SECONDS": "0.2", "LEADROUTER_RELOAD_POLL_SECONDS": "0.2",
             "LEADROUTER_WEBHOOK_URLS": receiver.url, "LEADROUTER_WEBHOOK_SECRET": SECRET,
             "LEADROUTER_WEBHOOK_TIMEOUT": "1", "LEADROUTER_OUTBOX_POLL_SECONDS": "0.1",
             "LEADROUTER_OUTBOX_RETRY_SECONDS": "0.1",
             "LEADROUTER_OUTBOX_RETRY_MAX_SECONDS": "0.5"})
    try:
        service.start()
        assert service.proc is not None
        supervisor = service.proc.pid
        workers = _worker_pids(service.url)
        before = httpx.get(f"{service.url}/v1/rules", timeout=5).json()["version"]

        primary.proc.send_signal(signal.SIGKILL)
        primary.proc.wait()
        killed = time.monotonic()
        until(lambda: sentinel_primary(sentinels[0], MASTER) not in (None, ("127.0.0.1",
                                                                           primary.port)),
              "the sentinels' promotion of a replica")
        promoted = time.monotonic()

        # committed after the promotion: its deadline (2 s) falls after the failover
        posted = _post_until_201(service.url)
        lead_id = posted["lead_id"]
        # (b) the outbox delivers its events, (a) the SLA worker breaches it
        events = until(lambda: "lead.breached" in (e := _events(receiver, lead_id)) and e,
                       f"delivery of lead.breached (the SLA worker's) for {lead_id}")
        assert "lead.assigned" in events, events
        history = httpx.get(f"{service.url}/v1/leads/{lead_id}", timeout=5).json()["history"]
        assert "breached" in [h["event"] for h in history], history
        breached = time.monotonic()

        # (c) a rules change made after the failover: both workers serve it
        (rules / "sla.yaml").write_text(FAST_SLA % "1h")
        after = until(lambda: (v := httpx.get(f"{service.url}/v1/rules", timeout=5)
                               .json()["version"]) != before and v, "the rules reload")
        _versions_by_pid(service.url, workers, after)
        # ...and an admin reload after the failover reaches the other worker through Redis (the
        # generation counter): an edit that keeps size and mtime, which no file poll sees
        sla = rules / "sla.yaml"
        stat = sla.stat()
        sla.write_text(FAST_SLA % "2h")
        os.utime(sla, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        reloaded = httpx.post(f"{service.url}/v1/admin/rules/reload", headers=AUTH, timeout=10)
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["version"] not in (before, after)
        _versions_by_pid(service.url, workers, reloaded.json()["version"])
        assert httpx.get(f"{service.url}/readyz", timeout=5).status_code == 200
        print(f"\nafter kill -9: promoted {promoted - killed:.2f}s, lead committed, assigned "
              f"and breached events delivered {breached - killed:.2f}s, rules {after[:12]} on "
              f"both workers {time.monotonic() - killed:.2f}s")

        # same processes throughout: the loops resumed by themselves, nothing restarted
        assert service.proc.poll() is None and service.proc.pid == supervisor
        assert _worker_pids(service.url) == workers
        # the loops did pause in both workers (the failover was felt), then resumed
        paused = {(r["pid"], r["logger"]) for r in _log_records(service)
                  if r["level"] == "warning"
                  and r["msg"].startswith(("outbox delivery to webhook paused", "SLA worker: "))}
        assert paused == {(pid, logger) for pid in workers
                          for logger in ("leadrouter.outbox", "leadrouter.sla")}, paused
        errors = [r for r in _log_records(service) if r["level"] in ("error", "critical")]
        assert errors == [], errors[:3]  # no loop died on an unexpected error
    finally:
        service.kill()
        receiver.stop()
        for server in (*sentinels, *replicas, primary):
            server.stop()
