"""The ``shutdown`` hook: called once at the end of the service's lifespan (sync or async, one
that raises or hangs never stops the others), and the email plugin's QUIT seen by a real SMTP
server (tests/_smtp.py) when the real service (real Valkey, uvicorn) stops."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from _service import ADMIN_TOKEN, ThreadServer, free_port, lead, write_rules
from _smtp import Smtp
from leadrouter_email import EmailPlugin
from leadrouter_sdk import hookimpl

from router.app.application import create_app
from router.plugins.host import PluginHost
from router.settings import Settings


class Closer:
    def __init__(self, calls: list[str], name: str) -> None:
        self.calls, self.name = calls, name

    @hookimpl
    def shutdown(self) -> None:
        self.calls.append(self.name)


class AsyncCloser(Closer):
    @hookimpl
    async def shutdown(self) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        self.calls.append(self.name)


class Broken:
    @hookimpl
    def shutdown(self) -> None:
        raise OSError("socket already gone")


class Hangs:
    @hookimpl
    async def shutdown(self) -> None:
        await asyncio.sleep(60)


def test_every_plugin_is_shut_down_once_whatever_the_others_do() -> None:
    calls: list[str] = []
    host = PluginHost(event_budget=0.2)
    host.register(Closer(calls, "sync"), "sync")
    host.register(Broken(), "broken")
    host.register(Hangs(), "hangs")
    host.register(AsyncCloser(calls, "async"), "async")
    assert "shutdown" in next(i for i in host.plugins() if i.name == "sync").hooks
    started = time.monotonic()
    asyncio.run(host.shutdown())
    assert time.monotonic() - started < 5  # the hanging one was cut at its budget
    assert sorted(calls) == ["async", "sync"]
    asyncio.run(host.shutdown())  # a second call does nothing
    assert sorted(calls) == ["async", "sync"]


def test_email_plugin_says_quit_when_the_service_stops(redis_url: str, tmp_path: Path) -> None:
    smtp = Smtp()
    rules = write_rules(tmp_path / "rules")
    host = PluginHost(event_budget=3.0)
    plugin = EmailPlugin("127.0.0.1", port=smtp.port, security="none",
                         sender="lr@sales.example", pools={"rr": "team@sales.example"},
                         reps={r: f"{r}@sales.example" for r in ("r1", "r2", "r3")},
                         timeout=2)
    host.register(plugin, "email")
    settings = Settings(redis_url=redis_url, admin_token=ADMIN_TOKEN, reload_poll_seconds=0,
                        rules_dir=str(rules), outbox_poll_seconds=0.02)
    with smtp:
        server = ThreadServer(create_app(settings, plugins=host), port=free_port()).start()
        try:
            with httpx.Client(base_url=server.url, timeout=15) as client:
                r = client.post("/v1/leads", json=lead(),
                                headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
                assert r.status_code == 201, r.text
            smtp.wait_for(1)  # delivered: the plugin keeps its connection open
            assert plugin._smtp is not None and smtp.quits == 0
        finally:
            server.stop()
        assert not server.thread.is_alive()
        deadline = time.monotonic() + 5
        while smtp.quits == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert smtp.quits == 1 and plugin._smtp is None
