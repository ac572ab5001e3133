"""LEADROUTER_REDIS_WAIT_REPLICAS against a real primary and replica (valkey-server): a commit
the replica does not confirm in time is answered 503 + Retry-After, the lead is stored, and the
retry with the same Idempotency-Key returns that lead — not a second one."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _ha import Server, replicas_acking, valkey_binary
from _service import assert_problem, lead

from router.observability import metrics


@pytest.fixture
def primary_and_replica(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    primary = Server(valkey_binary(), tmp_path / "primary", ["maxmemory-policy noeviction"])
    primary.wait_listening()
    replica = Server(valkey_binary(), tmp_path / "replica",
                     [f"replicaof 127.0.0.1 {primary.port}"])
    replica.wait_listening()
    replicas_acking(primary, 1)
    yield primary, replica
    os.kill(replica.proc.pid, signal.SIGCONT)
    replica.stop()
    primary.stop()


def stored_leads(server: Server) -> set[str]:
    return {k.decode() for k in server.client().scan_iter(match="lr:{lr}:lead:*", count=1000)
            if not k.endswith(b":history")}


def test_wait_timeout_is_a_503_and_the_retry_returns_the_stored_lead(
        start_service: Callable[..., Any], primary_and_replica: tuple[Server, Server]) -> None:
    primary, replica = primary_and_replica
    server = start_service(redis_url=f"redis://127.0.0.1:{primary.port}/0",
                           redis_wait_replicas=1, redis_wait_timeout_ms=300,
                           retry_after_seconds=1)
    with server.client() as client:
        ok = client.post("/v1/leads", json=lead(), headers={"Idempotency-Key": "w-1"})
        assert ok.status_code == 201, ok.text
        # the replica has it: WAIT returned only once it confirmed
        assert replica.client().exists(f"lr:{{lr}}:lead:{ok.json()['lead_id']}")
        timeouts_before = metrics.sample_value("leadrouter_redis_wait_timeouts_total")

        os.kill(replica.proc.pid, signal.SIGSTOP)  # alive and connected, but not answering
        try:
            started = time.monotonic()
            late = client.post("/v1/leads", json=lead(email="late@wait.example"),
                               headers={"Idempotency-Key": "w-2"})
            took = time.monotonic() - started
            body = assert_problem(late, 503)
            assert late.headers.get("retry-after") == "1"
            assert "replicas" in body["detail"] and "Idempotency-Key" in body["detail"], body
            assert took >= 0.3  # it waited for the replica first
            # stored on the primary all the same: the two leads and nothing else
            assert len(stored_leads(primary)) == 2
        finally:
            os.kill(replica.proc.pid, signal.SIGCONT)

        retry = client.post("/v1/leads", json=lead(email="late@wait.example"),
                            headers={"Idempotency-Key": "w-2"})
        assert retry.status_code == 200, retry.text  # the stored lead, not a new one
        lead_id = retry.json()["lead_id"]
        assert stored_leads(primary) == {f"lr:{{lr}}:lead:{ok.json()['lead_id']}",
                                         f"lr:{{lr}}:lead:{lead_id}"}
        assert client.get(f"/v1/leads/{lead_id}").status_code == 200
        fresh = client.post("/v1/leads", json=lead(), headers={"Idempotency-Key": "w-3"})
        assert fresh.status_code == 201, fresh.text  # replica back: answers as before
        metrics.flush()
        assert metrics.sample_value("leadrouter_redis_wait_timeouts_total") \
            >= timeouts_before + 1
