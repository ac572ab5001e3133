"""Debian's headless Chromium driven over the DevTools Protocol, for the browser tests
(tests/e2e/test_browser.py, tests/services/test_replay_report_html.py). Each test decides what
a missing chromium means for it (skip locally, fail in CI)."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from _service import free_port
from websockets.sync.client import ClientConnection, connect

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    """One tab over the DevTools Protocol: commands and the events seen meanwhile."""

    def __init__(self, ws: ClientConnection, *, timeout: float = 20) -> None:
        self.ws = ws
        self.timeout = timeout  # for one reply
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=self.timeout))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(i)
            with contextlib.suppress(TimeoutError):
                self.events.append(json.loads(self.ws.recv(timeout=0.5)))
        raise TimeoutError(f"no {method} within {timeout}s")

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        return result["result"].get("value")


@contextlib.contextmanager
def chromium(*extra: str, reply_timeout: float = 20) -> Iterator[Callable[[], Page]]:
    """A headless Chromium (``extra``: more command-line flags); yields a function that opens
    a DevTools connection to its page. Stopped and its profile removed at the end."""
    assert CHROMIUM is not None, "install Debian's chromium (apt-get install chromium)"
    port = free_port()
    profile = tempfile.mkdtemp(prefix="lr-chromium-")
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
         f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
         *extra, "about:blank"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sockets = contextlib.ExitStack()  # each DevTools connection, closed at the end

    def open_page() -> Page:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError, ValueError):
                targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=2).json()
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("chromium's DevTools endpoint did not come up")
            time.sleep(0.1)
        # 32 MiB: a full-page screenshot comes back in one message.
        ws: ClientConnection = sockets.enter_context(
            connect(pages[0]["webSocketDebuggerUrl"], max_size=2**25, open_timeout=10))
        return Page(ws, timeout=reply_timeout)

    try:
        yield open_page
    finally:
        sockets.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)
