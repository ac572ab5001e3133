"""router/app/application.py: what the app's lifespan sets up for a worker process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from router.app.application import create_app
from router.plugins.host import PluginHost
from router.settings import Settings, SettingsError

RULES = Path(__file__).resolve().parents[2] / "rules"


def test_the_collector_runs_less_often_once_the_app_has_started(redis_url: str) -> None:
    before = gc.get_threshold()
    settings = Settings(redis_url=redis_url, rules_dir=str(RULES), reload_poll_seconds=0,
                        gc_threshold=12_345)
    try:
        app = create_app(settings, plugins=PluginHost())
        assert gc.get_threshold() == before  # building the app changes nothing yet
        with TestClient(app) as client:
            assert client.get("/livez").status_code == 200
            assert gc.get_threshold() == (12_345, *before[1:])
    finally:
        gc.set_threshold(*before)  # the test process runs many apps; a worker runs one


def test_the_default_threshold_and_its_bounds() -> None:
    assert Settings().gc_threshold == 50_000
    assert Settings.from_env({"LEADROUTER_GC_THRESHOLD": "2000"}).gc_threshold == 2000
    with pytest.raises(SettingsError, match="LEADROUTER_GC_THRESHOLD"):
        Settings.from_env({"LEADROUTER_GC_THRESHOLD": "0"})  # 0 would switch collection off


@contextlib.asynccontextmanager
async def _lifespan(app: Any) -> AsyncIterator[None]:
    """The ASGI lifespan protocol, as a server speaks it."""
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"},
                                    "state": {}}, to_app.get, from_app.put))
    await to_app.put({"type": "lifespan.startup"})
    assert (await from_app.get())["type"] == "lifespan.startup.complete"
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        await from_app.get()
        await task


async def _asgi_post(app: Any, body: bytes) -> int:
    """One POST /v1/leads straight through the ASGI app (no server, no client library: their
    own allocations stay out of the count)."""
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
             "http_version": "1.1", "method": "POST", "scheme": "http", "path": "/v1/leads",
             "raw_path": b"/v1/leads", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"test"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 5555), "server": ("127.0.0.1", 80), "state": {}}
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


@pytest.mark.anyio
async def test_routing_a_lead_leaves_no_cyclic_garbage(redis_url: str) -> None:
    """Reference counting must free everything a lead allocates: the collector runs rarely
    (LEADROUTER_GC_THRESHOLD), so a reference cycle per lead piles up until one long pause
    frees it all — a closure that named itself once cost 25-65 ms pauses at 1,000 leads/s."""
    before = gc.get_threshold()
    settings = Settings(redis_url=redis_url, rules_dir=str(RULES), reload_poll_seconds=0,
                        sla_poll_seconds=0)
    app = create_app(settings)  # with the installed plugins: their dispatch is on the path
    try:
        async with _lifespan(app):
            bodies = [json.dumps({"email": f"p{i}@acme{i % 7}.example", "employees": 50 * i,
                                  "country": "US", "title": "VP Sales"}).encode()
                      for i in range(60)]
            for body in bodies[:10]:  # caches and memos fill up first: that is not garbage
                assert await _asgi_post(app, body) == 201
            gc.collect()
            gc.set_debug(gc.DEBUG_SAVEALL)
            try:
                for body in bodies[10:]:
                    assert await _asgi_post(app, body) == 201
                gc.collect()
                garbage = Counter(type(o).__qualname__ for o in gc.garbage)
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
    finally:
        gc.set_threshold(*before)
    assert sum(garbage.values()) < 25, garbage.most_common(10)  # 50 leads: < 1 object each


def test_the_app_indexes_older_leads_for_replay_once_after_it_starts(
        redis_url: str, redis_client: Any) -> None:
    """Leads a version before decision inputs stored (a hash, no input, no arrival index
    entry) are indexed by the started app in the background, and the marker says done."""
    import time

    old = [f"ld_{1_700_000_000_000 + n:012x}{n:024x}" for n in range(3)]
    for lead_id in old:
        redis_client.hset(f"lr:{{lr}}:lead:{lead_id}", mapping={"decision": "{}", "queue": "q"})
    settings = Settings(redis_url=redis_url, rules_dir=str(RULES), reload_poll_seconds=0)
    with TestClient(create_app(settings, plugins=PluginHost())) as client:
        assert client.get("/livez").status_code == 200
        deadline = time.monotonic() + 20  # it waits a few seconds after start first
        while redis_client.hget("lr:{lr}:leads:arrivals:backfill", "done") is None:
            assert time.monotonic() < deadline, "the start-up backfill never finished"
            time.sleep(0.2)
    assert redis_client.hget("lr:{lr}:leads:arrivals:backfill", "done") == b"3"
    assert [m.decode() for m in redis_client.zrange("lr:{lr}:leads:arrivals", 0, -1)] == old
