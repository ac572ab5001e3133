"""The embedded valkey-server: real processes, real files, real sockets."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio

from router.state.embedded import EmbeddedValkey, EmbeddedValkeyError

ROOT = Path(__file__).resolve().parents[2]


def _valkey_pids_serving(data_dir: Path) -> list[int]:
    """Every live valkey-server process whose working directory is ``data_dir``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != "valkey-server":
                continue
            if " Z " in (proc / "stat").read_text():
                continue
            if Path(os.readlink(proc / "cwd")) == data_dir:
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def _dead_pid() -> int:
    """A pid that certainly belonged to a process which has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    yield path
    # Never leave a server behind, whatever the test did.
    if (path / "valkey.pid").exists():
        leftover = EmbeddedValkey(path, start_timeout=5)
        try:
            leftover.start()
            leftover.stop(force=True)
        except EmbeddedValkeyError:
            pass
    assert _valkey_pids_serving(path) == []


def test_start_answers_ping_and_writes_aof(data_dir: Path) -> None:
    started = time.perf_counter()
    with EmbeddedValkey(data_dir) as server:
        elapsed = time.perf_counter() - started
        assert server.url == f"unix://{data_dir.resolve()}/valkey.sock?db=0"
        assert server.is_running() and server.owned
        assert (data_dir / "valkey.pid").read_text().strip() == str(server.pid)
        with redis.Redis.from_url(server.url) as client:
            assert client.ping()
            client.set("lead:1", "alice")
            config = client.config_get("*")
        assert config["appendonly"] == "yes"
        assert config["appendfsync"] == "everysec"
        assert config["maxmemory-policy"] == "noeviction"
        assert config["protected-mode"] == "yes"
        assert config["bind"] == "127.0.0.1"
        assert config["unixsocketperm"] == "700"  # this user only
        assert config["save"] == ""
        assert Path(config["dir"]) == data_dir
        # The write is in the AOF as soon as the reply arrives (written before replies go out;
        # fsynced within a second).
        incr = list((data_dir / "appendonlydir").glob("*.incr.aof"))
        assert incr and b"lead:1" in b"".join(p.read_bytes() for p in incr)
        assert (data_dir / "valkey.log").read_text()
    print(f"embedded valkey-server ready in {elapsed * 1000:.0f} ms")
    assert not server.is_running()
    assert not (data_dir / "valkey.sock").exists()
    assert not (data_dir / "valkey.pid").exists()
    assert not (data_dir / "valkey.port").exists()


def _listening_tcp_ports(pid: int) -> set[int]:
    """The TCP ports ``pid`` listens on (from /proc: its socket inodes in state LISTEN)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_it_listens_on_its_socket_only_unless_a_port_is_asked_for(data_dir: Path) -> None:
    socket_path = data_dir.resolve() / "valkey.sock"
    with EmbeddedValkey(data_dir) as server:
        assert _listening_tcp_ports(server.pid) == set()
        assert (data_dir / "valkey.port").read_text().strip() == "0"
        assert server.connect_hint == f"valkey-cli -s {socket_path}"
        with pytest.raises(EmbeddedValkeyError, match="LEADROUTER_EMBEDDED_PORT"):
            _ = server.port
        with redis.Redis.from_url(server.url) as client:
            assert client.config_get("port")["port"] == "0"
        # A process asking for TCP cannot get it from this server: said, not ignored.
        with pytest.raises(EmbeddedValkeyError, match=r"its socket .* only"):
            EmbeddedValkey(data_dir, port=0).start()
    with EmbeddedValkey(data_dir, port=0) as server:
        assert _listening_tcp_ports(server.pid) == {server.port}
        assert server.url == f"unix://{socket_path}?db=0"  # the service still uses the socket
        assert server.tcp_url == f"redis://127.0.0.1:{server.port}/0"
        assert (data_dir / "valkey.port").read_text().strip() == str(server.port)
        assert server.connect_hint == (f"valkey-cli -s {socket_path} or "
                                       f"valkey-cli -h 127.0.0.1 -p {server.port}")
        with redis.Redis.from_url(server.tcp_url) as tcp:
            assert tcp.ping()
        again = EmbeddedValkey(data_dir)  # no port asked for: reusing a TCP one is fine
        assert again.start() == server.url and not again.owned


def test_a_data_dir_too_deep_for_a_unix_socket_is_served_over_tcp(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["d" * 20] * 5)
    assert len(str(deep / "valkey.sock")) > 100
    with EmbeddedValkey(deep) as server, redis.Redis.from_url(server.url) as client:
        assert server.url == server.tcp_url == f"redis://127.0.0.1:{server.port}/0"
        assert client.ping() and client.config_get("unixsocket")["unixsocket"] == ""
        assert not (deep / "valkey.sock").exists()


def test_a_reused_server_without_the_socket_is_reached_over_tcp(data_dir: Path) -> None:
    """A server an older leadrouter started (no socket in its config) keeps being reused."""
    with EmbeddedValkey(data_dir, port=0) as first:
        (data_dir / "valkey.sock").unlink()  # as if it had never listened there
        second = EmbeddedValkey(data_dir)
        assert second.start() == first.tcp_url
        with redis.Redis.from_url(second.url) as client:
            assert client.ping()
        second.stop()


def test_data_survives_stop_and_start(data_dir: Path) -> None:
    with EmbeddedValkey(data_dir) as server, redis.Redis.from_url(server.url) as client:
        client.hset("lead:42", mapping={"owner": "bob", "score": 87})
    with EmbeddedValkey(data_dir) as again, redis.Redis.from_url(again.url) as client:
        assert again.owned
        assert client.hgetall("lead:42") == {b"owner": b"bob", b"score": b"87"}


def test_second_instance_reuses_running_server(data_dir: Path) -> None:
    with EmbeddedValkey(data_dir) as first:
        second = EmbeddedValkey(data_dir)
        assert second.start() == first.url
        assert (second.url, second.pid) == (first.url, first.pid)
        assert first.owned and not second.owned
        second.stop()  # not its server: must leave it running
        assert first.is_running()
        with redis.Redis.from_url(first.url) as client:
            assert client.ping()
    assert not first.is_running()


def test_reuse_refuses_a_different_fixed_port(data_dir: Path) -> None:
    with EmbeddedValkey(data_dir, port=0) as server:
        other_port = server.port + 1 if server.port < 65535 else server.port - 1
        with pytest.raises(EmbeddedValkeyError, match="already served by valkey-server"):
            EmbeddedValkey(data_dir, port=other_port).start()


def test_lost_pidfile_still_reuses_running_server(data_dir: Path) -> None:
    with EmbeddedValkey(data_dir) as first:
        (data_dir / "valkey.pid").unlink()
        second = EmbeddedValkey(data_dir)
        second.start()
        assert (second.url, second.pid, second.owned) == (first.url, first.pid, False)


@pytest.mark.parametrize("stale_pid", ["dead", "not-valkey", "garbage"])
def test_stale_pidfile_is_recovered(data_dir: Path, stale_pid: str) -> None:
    data_dir.mkdir()
    pid = {"dead": str(_dead_pid()), "not-valkey": str(os.getpid()), "garbage": "x"}[stale_pid]
    (data_dir / "valkey.pid").write_text(f"{pid}\n")
    (data_dir / "valkey.port").write_text("1\n")
    with EmbeddedValkey(data_dir) as server:
        assert server.owned and server.is_running()
        assert str(server.pid) != pid
        assert (data_dir / "valkey.pid").read_text().strip() == str(server.pid)


def test_pidfile_of_another_data_dirs_server_is_stale(data_dir: Path, tmp_path: Path) -> None:
    # Pids get reused, and a test run has many valkey-servers: a stale pid file can name a live
    # valkey-server that serves some other data dir. It must not be reused (nor stopped).
    with EmbeddedValkey(tmp_path / "other", port=0) as other:
        data_dir.mkdir()
        (data_dir / "valkey.pid").write_text(f"{other.pid}\n")
        (data_dir / "valkey.port").write_text(f"{other.port}\n")
        with EmbeddedValkey(data_dir) as server:
            assert server.owned and server.pid != other.pid and server.url != other.url
        assert other.is_running()


_WORKER = """
import json, sys, time
from pathlib import Path
from router.state.embedded import EmbeddedValkey
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
server = EmbeddedValkey(sys.argv[1])
server.start()
print(json.dumps({"url": server.url, "pid": server.pid, "owned": server.owned}))
"""


@pytest.mark.slow
def test_concurrent_processes_share_one_server(data_dir: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(data_dir), str(go)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    time.sleep(0.5)  # let every interpreter import and spin on the go file
    go.touch()
    results = []
    for worker in workers:
        out, _ = worker.communicate(timeout=60)
        assert worker.returncode == 0
        results.append(json.loads(out))
    # The owner exited without stop(): the server outlives it (its own session) for reuse.
    assert sum(r["owned"] for r in results) == 1
    assert len({(r["url"], r["pid"]) for r in results}) == 1
    assert _valkey_pids_serving(data_dir) == [results[0]["pid"]]
    reuse = EmbeddedValkey(data_dir)
    reuse.start()
    assert not reuse.owned and reuse.pid == results[0]["pid"]
    reuse.stop(force=True)
    assert _valkey_pids_serving(data_dir) == []
    assert not (data_dir / "valkey.pid").exists()


def test_fixed_port_in_use_gives_clear_error(data_dir: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(EmbeddedValkeyError) as error:
            EmbeddedValkey(data_dir, port=port).start()
    message = str(error.value)
    assert f"127.0.0.1:{port}" in message
    assert "exited with status" in message
    assert "Address already in use" in message  # the tail of the server's own log
    assert str(data_dir / "valkey.log") in message
    assert not (data_dir / "valkey.pid").exists()
    assert not (data_dir / "valkey.port").exists()


def test_not_started_has_no_url(data_dir: Path) -> None:
    server = EmbeddedValkey(data_dir)
    assert not server.is_running()
    with pytest.raises(EmbeddedValkeyError, match="not started"):
        _ = server.url
    server.stop()  # a no-op, not an error


# -- the shared fixtures in conftest.py --------------------------------------------------------


def test_redis_url_is_an_empty_database(redis_url: str, redis_client: redis.Redis) -> None:
    assert not redis_url.endswith("/0")
    assert redis_client.dbsize() == 0


def test_leave_keys_in_every_database(valkey_server: EmbeddedValkey) -> None:
    for db in range(16):
        with redis.Redis(host="127.0.0.1", port=valkey_server.port, db=db) as client:
            client.set("left-behind", db)


def test_databases_are_flushed_before_reuse(redis_client: redis.Redis) -> None:
    # Runs after the test above, whichever database the rotation hands out now.
    assert redis_client.get("left-behind") is None


@pytest.mark.anyio
async def test_async_client(aredis: redis.asyncio.Redis, redis_client: redis.Redis) -> None:
    await aredis.set("k", "v")
    assert redis_client.get("k") == b"v"  # same database as the sync client
