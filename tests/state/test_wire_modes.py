"""The connection's modes against real servers (valkey-server): Sentinel URLs and discovery
with sentinels tried in turn, reconnecting away from a server that answers READONLY, backoff
while nothing answers, and TLS settings errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from _ha import Server, valkey_binary
from _service import free_port

from router.state._sentinel import parse_sentinel_url
from router.state.errors import StateUnavailable, translate_errors
from router.state.wire import ReplyError, TlsOptions, Wire


def test_sentinel_urls_parse_and_malformed_ones_say_the_form() -> None:
    target = parse_sentinel_url("redis+sentinel://app:p%40ss@s1:26380,s2,[::1]:5000/main/3"
                                "?sentinel_password=x")
    assert target.sentinels == [("s1", 26380), ("s2", 26379), ("::1", 5000)]
    assert (target.master, target.db, target.username, target.password) == ("main", 3, "app",
                                                                           "p@ss")
    assert target.sentinel_password == "x" and not target.tls
    assert parse_sentinel_url("rediss+sentinel://h/m").tls
    for bad in ("redis+sentinel://h1,h2", "redis+sentinel:///m", "redis+sentinel://h:x/m"):
        with pytest.raises(ValueError, match="master_name"):
            Wire(bad)


def test_tls_files_that_cannot_be_read_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="LEADROUTER_REDIS_TLS_CA_FILE"):
        Wire("rediss://h:6380", tls=TlsOptions(ca_file=str(tmp_path / "none.pem")))
    with pytest.raises(ValueError, match="set both or neither"):
        Wire("rediss://h:6380", tls=TlsOptions(key_file=str(tmp_path / "k.pem")))


@pytest.fixture
def primary_with_sentinel(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    primary = Server(valkey_binary(), tmp_path / "primary", [])
    primary.wait_listening()
    sentinel = Server(valkey_binary(), tmp_path / "sentinel",
                      [f"sentinel monitor m1 127.0.0.1 {primary.port} 1"], sentinel=True)
    sentinel.wait_listening()
    yield primary, sentinel
    sentinel.stop()
    primary.stop()


@pytest.mark.anyio
async def test_sentinels_are_tried_in_turn_and_the_one_that_answered_goes_first(
        primary_with_sentinel: tuple[Server, Server]) -> None:
    primary, sentinel = primary_with_sentinel
    dead = free_port()
    wire = Wire(f"redis+sentinel://127.0.0.1:{dead},127.0.0.1:{sentinel.port}/m1")
    try:
        assert await wire.call("SET", "k", "v") == b"OK"
        assert wire.sentinel is not None
        assert wire.sentinel.sentinels[0] == ("127.0.0.1", sentinel.port)
        assert await wire.call("ROLE") and primary.client().get("k") == b"v"
    finally:
        await wire.close()
    unknown = Wire(f"redis+sentinel://127.0.0.1:{dead},127.0.0.1:{sentinel.port}/nope")
    with pytest.raises(ConnectionError) as info:
        await unknown.call("PING")
    message = str(info.value)
    assert f"127.0.0.1:{dead}:" in message and "does not know a primary named 'nope'" in message


@pytest.mark.anyio
async def test_a_readonly_reply_drops_the_connection_and_the_next_call_reconnects(
        tmp_path: Path) -> None:
    server = Server(valkey_binary(), tmp_path / "demoted", [f"replicaof 127.0.0.1 {free_port()}"])
    server.wait_listening()
    wire = Wire(f"redis://127.0.0.1:{server.port}")
    try:
        with pytest.raises(ReplyError, match="READONLY"):
            await wire.call("SET", "k", "v")
        assert wire._proto is not None and wire._proto.lost  # dropped, not reused
        server.client().execute_command("REPLICAOF", "NO", "ONE")  # "promoted"
        assert await wire.call("SET", "k", "v") == b"OK"
        assert (wire.failovers, wire.reconnects) == (1, 1)
    finally:
        await wire.close()
        server.stop()


@pytest.mark.anyio
async def test_while_nothing_answers_calls_fail_at_once_and_attempts_back_off() -> None:
    wire = Wire(f"redis://127.0.0.1:{free_port()}", connect_timeout=0.5)
    with pytest.raises(StateUnavailable), translate_errors("ping"):
        await wire.call("PING")
    delays = [wire._backoff]
    while len(delays) < 8:
        await asyncio.sleep(wire._backoff + 0.01)  # past the backoff: a real attempt
        with pytest.raises(ConnectionError, match=r"refused|Connect call failed"):
            await wire.call("PING")
        delays.append(wire._backoff)
    assert delays == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]  # doubling, bounded
    with pytest.raises(ConnectionError, match="retrying"):
        await wire.call("PING")  # inside the 1 s backoff: fails at once, no new attempt
