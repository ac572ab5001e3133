"""Restart persistence: ``leadrouter serve`` with its embedded Valkey (no ``--redis-url``) keeps
every decision across a clean stop, a crash of the service, and a crash of the service together
with its Valkey. Real processes, real signals, the same data dir each time."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from _service import ServiceProcess, free_port, lead, pid_alive, wait_dead

pytestmark = pytest.mark.slow


def _valkey_pid(data_dir: Path) -> int:
    return int((data_dir / "valkey.pid").read_text().strip())


@pytest.fixture
def data_dir(tmp_path: Path) -> Any:
    """The service's data dir; whatever valkey-server is left running in it is killed after."""
    path = tmp_path / "data"
    yield path
    with contextlib.suppress(OSError, ValueError):
        pid = _valkey_pid(path)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def _service(rules_dir: Path, data_dir: Path, port: int, tmp_path: Path,
             workers: int = 1) -> ServiceProcess:
    return ServiceProcess(rules_dir=rules_dir, data_dir=data_dir, port=port, workers=workers,
                          log_path=tmp_path / "serve.log")


def _post_and_get(url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    with httpx.Client(base_url=url, timeout=10) as client:
        created = client.post("/v1/leads", json=lead(), headers={"Idempotency-Key": "k-1"})
        assert created.status_code == 201, created.text
        stored = client.get(created.headers["location"])
        assert stored.status_code == 200
        return created.json(), stored.json()


def _check_after_restart(url: str, created: dict[str, Any], stored: dict[str, Any]) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        again = client.get(f"/v1/leads/{created['lead_id']}")
        assert again.status_code == 200, again.text
        assert again.json() == stored
        # the idempotency record survived too: a client retry does not route a second lead
        retry = client.post("/v1/leads", json=lead(), headers={"Idempotency-Key": "k-1"})
        assert retry.status_code == 200, retry.text
        assert retry.json()["lead_id"] == created["lead_id"] and retry.json()["duplicate"]
        # and so did the rotation: the next lead goes to the next rep of the pool
        nxt = client.post("/v1/leads", json=lead(email="next@acme-corp.example")).json()
        assert nxt["assignment"]["owner"] != created["assignment"]["owner"]
        stats = client.get("/v1/pools/rr").json()
        assert sum(m["assigned_in_pool"] for m in stats["members"]) == 2


def test_decisions_survive_a_clean_restart(tmp_path: Path, rules_dir: Path,
                                           data_dir: Path) -> None:
    port = free_port()
    with _service(rules_dir, data_dir, port, tmp_path, workers=2) as service:
        created, stored = _post_and_get(service.url)
        valkey = _valkey_pid(data_dir)
        assert pid_alive(valkey)
        # (the supervisor of several workers exits 0; a single worker re-raises SIGTERM: 143)
        assert service.stop() in (0, 128 + signal.SIGTERM), service.log_tail()
    # SIGTERM stops the workers, then the embedded Valkey (SHUTDOWN, AOF fsynced)
    assert wait_dead(valkey, 1.0), "the embedded valkey-server outlived the service"
    assert not (data_dir / "valkey.pid").exists()
    assert (data_dir / "appendonlydir").is_dir()

    with _service(rules_dir, data_dir, port, tmp_path) as service:
        assert _valkey_pid(data_dir) != valkey
        _check_after_restart(service.url, created, stored)


def test_decisions_survive_a_crash_of_the_service_and_of_valkey(tmp_path: Path,
                                                                rules_dir: Path,
                                                                data_dir: Path) -> None:
    port = free_port()
    service = _service(rules_dir, data_dir, port, tmp_path).start()
    try:
        created, stored = _post_and_get(service.url)
        valkey = _valkey_pid(data_dir)
    finally:
        service.kill()  # SIGKILL the service's whole process group: no shutdown code runs
    # Valkey runs in a session of its own: it survives, and the next start reuses it
    assert pid_alive(valkey)
    with _service(rules_dir, data_dir, port, tmp_path) as service:
        assert _valkey_pid(data_dir) == valkey
        with httpx.Client(base_url=service.url) as client:
            assert client.get(f"/v1/leads/{created['lead_id']}").json() == stored
        service.kill()
        os.kill(valkey, signal.SIGKILL)  # now Valkey crashes too, before any clean shutdown
    assert wait_dead(valkey)

    with _service(rules_dir, data_dir, port, tmp_path) as service:
        assert _valkey_pid(data_dir) != valkey  # a fresh server, replaying the AOF
        _check_after_restart(service.url, created, stored)
