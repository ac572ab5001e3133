"""Helpers for the service integration tests (tests/api/, tests/e2e/ and others over HTTP).

* :func:`write_rules` writes a small, deterministic rules directory (``_rules.SERVICE_RULES``):
  every rep works 00:00-24:00 every day in UTC and the pools the load tests use ignore working
  hours, so routing does not depend on when the suite runs.
* :class:`ThreadServer` runs the real app on a real uvicorn server in a background thread (one
  process, fast to start, lets a test inject a clock).
* :class:`ServiceProcess` runs ``leadrouter serve`` as a real process (its own process group),
  for multi-process, restart and crash tests.

No mocks: both talk HTTP over a socket to the real app, backed by a real valkey-server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from _rules import SERVICE_RULES

ADMIN_TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
JSON = {"Content-Type": "application/json"}


def write_rules(directory: Path, overrides: Mapping[str, str] | None = None) -> Path:
    """Write the default rules (``_rules.SERVICE_RULES``), with ``overrides`` by file name, into
    ``directory``."""
    for name, text in {**SERVICE_RULES, **(overrides or {})}.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return directory


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lead(**fields: Any) -> dict[str, Any]:
    """A valid lead; override or add fields with keyword arguments."""
    body: dict[str, Any] = {"email": "jane.doe@acme-corp.example", "first_name": "Jane",
                            "last_name": "Doe", "company": "Acme Corp", "employees": 5000,
                            "country": "US", "budget": 100000, "title": "VP Sales"}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with ``status``; returns its body."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/problem+json"), \
        response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body.get("title") and body.get("detail"), body
    return body


class Clock:
    """A clock the app reads (``create_app(clock=...)``): real time plus a movable offset."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += dt.timedelta(**delta)


class ThreadServer:
    """The real app on a real uvicorn server, in a background thread of the test process."""

    def __init__(self, app: Any, *, port: int | None = None) -> None:
        import uvicorn

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, lifespan="on",
                                log_level="warning", access_log=False, loop="asyncio",
                                timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn:{self.port}",
                                       daemon=True)

    def start(self, timeout: float = 20.0) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the in-thread uvicorn server exited during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError(f"uvicorn did not start within {timeout}s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=15, **kwargs)


def leadrouter_command() -> list[str]:
    """``leadrouter`` from this environment (the console script next to the interpreter)."""
    script = Path(sys.executable).with_name("leadrouter")
    return [str(script)] if script.exists() else [sys.executable, "-m", "router.app.cli"]


class ServiceProcess:
    """``leadrouter serve`` in its own process group, output captured to a log file."""

    def __init__(self, *, rules_dir: Path, log_path: Path, port: int | None = None,
                 redis_url: str | None = None, data_dir: Path | None = None, workers: int = 1,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.args = [*leadrouter_command(), "serve", "--port", str(self.port),
                     "--rules", str(rules_dir), "--workers", str(workers)]
        if redis_url:
            self.args += ["--redis-url", redis_url]
        if data_dir:
            self.args += ["--data-dir", str(data_dir)]
        base = {k: v for k, v in os.environ.items() if not k.startswith("LEADROUTER_")}
        self.env = {**base, "LEADROUTER_ADMIN_TOKEN": ADMIN_TOKEN,
                    "LEADROUTER_LOG_LEVEL": "warning", **(env or {})}
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def launch(self) -> ServiceProcess:
        """Start the process without waiting (start several, then ``wait_ready`` each)."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.args, env=self.env, cwd=self.cwd,
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def start(self, timeout: float = 60.0) -> ServiceProcess:
        self.launch().wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Until ``/readyz`` answers 200 (Redis reachable, rules loaded)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"leadrouter serve exited with {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                response = httpx.get(f"{self.url}/readyz", timeout=2)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"leadrouter serve not ready within {timeout}s ({last}):\n"
                           f"{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def signal(self, sig: int, *, group: bool = False) -> None:
        assert self.proc is not None
        try:
            if group:
                os.killpg(self.proc.pid, sig)  # the session leader's pid is the group id
            else:
                self.proc.send_signal(sig)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; SIGKILL the group if it does not exit in time."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL the whole process group (supervisor and workers) and reap the leader."""
        if self.proc is None:
            return
        self.signal(signal.SIGKILL, group=True)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.stop(timeout=15)
        self.kill()  # stragglers in the group (a worker that outlived the supervisor)


def pid_alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


class RawResponse:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status_code = status
        self.headers = headers
        self.content = body

    def json(self) -> Any:
        import json

        return json.loads(self.content)


class RawClient:
    """A lean HTTP/1.1 keep-alive client for load tests: ``connections`` sockets, each carrying
    one request at a time. Real HTTP over TCP like httpx, but ~20x cheaper in client CPU, which
    matters when the client shares two cores with the servers it is loading (httpx.AsyncClient
    spends ~5 ms of CPU per request at 64 in flight on this machine class, 3-4x the service)."""

    def __init__(self, host: str, port: int, connections: int) -> None:
        import asyncio

        self.host, self.port = host, port
        self._idle: asyncio.Queue[tuple[Any, Any]] = asyncio.Queue()
        self._free = connections
        self._all: list[Any] = []

    async def _checkout(self) -> tuple[Any, Any]:
        import asyncio

        if self._idle.empty() and self._free > 0:
            self._free -= 1
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self._all.append(writer)
            return reader, writer
        return await self._idle.get()

    async def request(self, method: str, path: str, body: Any = None,
                      headers: Mapping[str, str] | None = None) -> RawResponse:
        import json

        payload = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                f"Content-Length: {len(payload)}"]
        if body is not None:
            head.append("Content-Type: application/json")
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        reader, writer = await self._checkout()
        try:
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
            status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode(
                "latin-1").split("\r\n")
            fields = {k.strip().lower(): v.strip()
                      for k, _, v in (line.partition(":") for line in lines if line)}
            if "content-length" not in fields:
                raise RuntimeError(f"response without Content-Length: {fields}")
            content = await reader.readexactly(int(fields["content-length"]))
        except BaseException:
            writer.close()
            self._free += 1
            raise
        self._idle.put_nowait((reader, writer))
        return RawResponse(int(status_line.split(" ", 2)[1]), fields, content)

    async def post(self, path: str, json: Any = None,
                   headers: Mapping[str, str] | None = None) -> RawResponse:
        return await self.request("POST", path, json, headers)

    async def get(self, path: str) -> RawResponse:
        return await self.request("GET", path)

    async def aclose(self) -> None:
        for writer in self._all:
            writer.close()


def wait_dead(pid: int, timeout: float = 10.0) -> bool:
    """Wait until ``pid`` is gone (or a zombie): a signal is delivered asynchronously."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
