"""Open-loop HTTP/1.1 POST load generator with varied bodies, corrected for coordinated omission.

    uv run python loadtests/openloop.py http://127.0.0.1:8080/v1/leads --rate 500 --duration 10 \
        [--bodies loadtests/.bench/bodies.txt] [--connections 64] [-H 'Name: value'] [--json]

Request ``i`` (of ``round(rate * duration)``) has an *intended* send time ``start + i / rate``
and carries body ``i mod len(bodies)`` (one JSON body per line of ``--bodies``). It is written
at that time on a free keep-alive connection of the pool; if none is free, it waits for one.
Its latency runs from the intended send time to the end of the response, so a server that
stalls cannot hide its queue behind a client that stopped sending (coordinated omission): the
requests scheduled during a stall show the stall in their latency even when each answer after
it is fast. Requests that started more than 1 ms late (pool exhausted, client overloaded, timer
woke late) are counted; the service time from the actual send is reported next to the latency
so that the difference is visible.

Low overhead: one process, one uvloop event loop, a raw ``asyncio.Protocol`` per connection,
requests pre-encoded once per body, responses framed by httptools (Content-Length, or chunked),
and the schedule driven by a Linux ``timerfd`` (nanosecond deadlines; libuv's own timers have
millisecond granularity and fire up to 1 ms early), with the event loop's timers as a fallback
elsewhere (or with ``--loop-timer``). Python API: ``run(url, rate, duration, bodies) -> Result``;
``Result.report()`` is the text the CLI prints, ``--json`` prints the result (without the raw
latencies) as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import math
import os
import sys
import time
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import httptools
import msgspec
import uvloop

LATE = 0.001  # a request that starts more than this after its intended time is "late"
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


class Result(msgspec.Struct, kw_only=True):
    """One run. Times in seconds unless the name says ms; latency lists are sorted."""

    url: str
    offered_rate: float
    duration: float  # the schedule: requests were intended over [0, duration)
    count: int  # requests scheduled = round(offered_rate * duration)
    connections: int  # pool size (maximum open connections)
    elapsed: float  # from the first intended send to the last response
    status: dict[int, int]  # responses by HTTP status
    connection_errors: int  # requests lost with their connection, never connected, or
    # answered with something that is not HTTP/1.1
    unanswered: int  # still waiting (queued or in flight) when the drain timeout ran out
    late_starts: int  # requests written more than 1 ms after their intended send time
    queued: int  # requests that found no free connection at their intended time and waited
    reconnects: int  # connections opened after the initial pool
    client_cpu: float  # the generator's CPU time / elapsed (1.0 = one core busy)
    timer: str  # "timerfd" or "loop"
    latency_pct: dict[str, float]  # from the intended send: p50, p90, p99, p99.9, max (ms)
    service_pct: dict[str, float]  # from the actual send, same keys (ms)
    send_lag_pct: dict[str, float]  # actual minus intended send time, same keys (ms)
    latencies_ms: list[float] = []  # every answered request, sorted; empty when read from JSON

    @property
    def completed(self) -> int:
        return sum(self.status.values())

    @property
    def achieved_rate(self) -> float:
        """Responses (any status) per second from the first intended send to the last one."""
        return self.completed / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def ok(self) -> int:
        return sum(n for code, n in self.status.items() if 200 <= code < 300)

    @property
    def non_2xx(self) -> int:
        return self.completed - self.ok

    @property
    def errors(self) -> int:
        return self.non_2xx + self.connection_errors + self.unanswered

    def percentile(self, p: float) -> float:
        """Exact (nearest-rank) percentile of the latencies from the intended send, in ms."""
        return percentile(self.latencies_ms, p)

    def summary(self) -> Result:
        """The same result without the raw latencies (what ``--json`` prints)."""
        return msgspec.structs.replace(self, latencies_ms=[])

    def report(self) -> str:
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.status.items())) or "none"
        lines = [
            f"openloop POST {self.url}: offered {self.offered_rate:,.1f} req/s for "
            f"{self.duration:g} s ({self.count} requests, pool of {self.connections} "
            f"connections)",
            f"achieved {self.achieved_rate:,.1f} req/s over {self.elapsed:.3f} s: "
            f"{self.completed} responses ({codes}); errors {self.errors} = non-2xx "
            f"{self.non_2xx} + connection {self.connection_errors} + unanswered "
            f"{self.unanswered}",
            "latency from intended send (ms): " + _fmt(self.latency_pct),
            "service time from actual send (ms): " + _fmt(self.service_pct),
            "send lag (ms): " + _fmt(self.send_lag_pct)
            + f"; {self.late_starts} started > 1 ms late, {self.queued} waited for a "
            "free connection",
            f"client: {self.client_cpu:.0%} of one core, {self.timer} timer, "
            f"{self.reconnects} reconnects",
        ]
        return "\n".join(lines)


def _fmt(pct: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.3f}" for k, v in pct.items())


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(math.ceil(p * len(sorted_values) / 100.0 - 1e-9), 1)  # 1e-9: 99.9 % of 1000
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _pct_ms(sorted_seconds: Sequence[float]) -> dict[str, float]:
    out = {f"p{p:g}": percentile(sorted_seconds, p) * 1000 for p in PERCENTILES}
    out["max"] = (sorted_seconds[-1] if sorted_seconds else 0.0) * 1000
    return out


def load_bodies(path: str | Path) -> list[bytes]:
    """One body per non-empty line."""
    bodies = [line.strip() for line in Path(path).read_bytes().splitlines() if line.strip()]
    if not bodies:
        raise ValueError(f"{path}: no bodies")
    return bodies


# --- timers --------------------------------------------------------------------------------


class _TimeSpec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _ITimerSpec(ctypes.Structure):
    _fields_ = [("it_interval", _TimeSpec), ("it_value", _TimeSpec)]


class _TimerFd:
    """A CLOCK_MONOTONIC timerfd (the clock behind ``time.monotonic``) watched by the loop."""

    name = "timerfd"

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        create, self._settime = libc.timerfd_create, libc.timerfd_settime
        create.argtypes = [ctypes.c_int, ctypes.c_int]
        self._settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_ITimerSpec),
                                  ctypes.c_void_p]
        fd = create(1, os.O_NONBLOCK | os.O_CLOEXEC)  # CLOCK_MONOTONIC; TFD_* == O_*
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        self.fd: int = fd
        self._spec = _ITimerSpec()
        self._ref = ctypes.byref(self._spec)
        self._loop, self._callback = loop, callback
        loop.add_reader(fd, self._fired)

    def _fired(self) -> None:
        try:
            os.read(self.fd, 8)
        except BlockingIOError:  # re-armed since it expired
            return
        self._callback()

    def arm(self, when: float) -> None:
        sec = int(when)
        self._spec.it_value.tv_sec = sec
        self._spec.it_value.tv_nsec = max(int((when - sec) * 1e9), 1)
        if self._settime(self.fd, 1, self._ref, None) != 0:  # TFD_TIMER_ABSTIME
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    def close(self) -> None:
        self._loop.remove_reader(self.fd)
        os.close(self.fd)


class _LoopTimer:
    """Fallback: the event loop's timers (millisecond granularity under uvloop)."""

    name = "loop"

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self._loop, self._callback = loop, callback
        self._handle: asyncio.TimerHandle | None = None

    def arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._loop.call_later(max(when - time.monotonic(), 0.0), self._callback)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


def _make_timer(loop: asyncio.AbstractEventLoop, callback: Callable[[], None],
                precise: bool) -> _TimerFd | _LoopTimer:
    if precise and sys.platform.startswith("linux"):
        try:
            return _TimerFd(loop, callback)
        except (OSError, AttributeError):
            pass
    return _LoopTimer(loop, callback)


# --- connections and the schedule ------------------------------------------------------------


class _Conn(asyncio.Protocol):
    __slots__ = ("busy", "counted", "gen", "intended", "lost", "parser", "sent_at", "transport")

    def __init__(self, gen: _Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.busy = False  # a request is in flight
        self.counted = False  # counted in gen.open
        self.lost = False
        self.intended = 0.0
        self.sent_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's is not a subclass
        self.gen.conns.add(self)
        self.counted = True
        self.gen.open += 1

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.gen.protocol_errors.append(f"{type(exc).__name__}: {exc}")
            self.close()

    def on_message_complete(self) -> None:  # httptools callback
        self.gen.response(self, self.parser.get_status_code(), self.parser.should_keep_alive())

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.gen.lost(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _Generator:
    def __init__(self, loop: asyncio.AbstractEventLoop, host: str, port: int,
                 requests: list[bytes], rate: float, count: int, connections: int) -> None:
        self.loop, self.host, self.port = loop, host, port
        self.requests, self.rate, self.count = requests, rate, count
        self.max_conns = connections
        self.conns: set[_Conn] = set()  # every open connection
        self.idle: list[_Conn] = []  # LIFO: busy connections stay warm, spare ones may idle out
        self.pending: deque[int] = deque()  # requests due but waiting for a connection
        self.open = 0
        self.connecting = 0
        self.inflight = 0
        self.next_i = 0
        self.start = 0.0
        self.last_response = 0.0
        self.latencies = array("d")  # seconds, in completion order
        self.service = array("d")
        self.lags = array("d")
        self.status: dict[int, int] = {}
        self.connection_errors = 0
        self.reconnects = 0
        self.late = 0
        self.queued = 0
        self.protocol_errors: list[str] = []
        self.closed = False
        self.done: asyncio.Future[None] = loop.create_future()
        self.timer: _TimerFd | _LoopTimer | None = None

    def loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """A bug in a callback must end the run, not leave a silently wrong result."""
        if not self.done.done():
            exc = context.get("exception")
            err = RuntimeError(f"openloop: {context.get('message')}: {exc!r}")
            self.done.set_exception(err)

    async def connect(self, initial: bool = False) -> None:
        conn = _Conn(self)
        try:
            await self.loop.create_connection(lambda: conn, self.host, self.port)
        except OSError:
            self.connecting -= 1
            if initial:
                raise
            # Each failed connect fails one waiting request, so a dead server cannot stall us.
            if self.pending:
                self.pending.popleft()
                self.connection_errors += 1
            self.refill()
            self.check_done()
            return
        self.connecting -= 1
        if self.closed:
            conn.close()
        elif not conn.lost:
            self.release(conn)

    def refill(self) -> None:
        """Open connections for waiting requests, up to the pool size."""
        while (not self.closed and len(self.pending) > self.connecting
               and self.open + self.connecting < self.max_conns):
            self.connecting += 1
            self.reconnects += 1
            self.loop.create_task(self.connect())

    def tick(self) -> None:
        """Timer callback: start every request whose intended time has come, re-arm."""
        now = time.monotonic()
        i, start, rate, count = self.next_i, self.start, self.rate, self.count
        idle = self.idle
        while i < count and start + i / rate <= now:
            if idle:
                self.send(idle.pop(), i)
            else:
                self.pending.append(i)
                self.queued += 1
                self.refill()
            i += 1
        self.next_i = i
        if i < count:
            assert self.timer is not None
            self.timer.arm(start + i / rate)
        else:
            self.check_done()

    def send(self, conn: _Conn, i: int) -> None:
        now = time.monotonic()
        intended = self.start + i / self.rate
        lag = now - intended
        self.lags.append(lag)
        if lag > LATE:
            self.late += 1
        conn.busy = True
        conn.intended, conn.sent_at = intended, now
        self.inflight += 1
        assert conn.transport is not None
        conn.transport.write(self.requests[i % len(self.requests)])

    def release(self, conn: _Conn) -> None:
        if self.pending:
            self.send(conn, self.pending.popleft())
        else:
            self.idle.append(conn)

    def response(self, conn: _Conn, code: int, keep_alive: bool) -> None:
        now = time.monotonic()
        if not conn.busy:
            self.protocol_errors.append(f"unsolicited response (status {code})")
            conn.close()
            return
        conn.busy = False
        self.inflight -= 1
        self.latencies.append(now - conn.intended)
        self.service.append(now - conn.sent_at)
        self.status[code] = self.status.get(code, 0) + 1
        self.last_response = now
        if keep_alive and not self.closed:
            self.release(conn)
        else:
            conn.close()
            self.refill()
        self.check_done()

    def lost(self, conn: _Conn) -> None:
        self.conns.discard(conn)
        if self.closed:
            return
        if conn.counted:
            self.open -= 1
        if conn in self.idle:
            self.idle.remove(conn)
        if conn.busy:
            conn.busy = False
            self.inflight -= 1
            self.connection_errors += 1
        self.refill()
        self.check_done()

    def close(self) -> None:
        self.closed = True
        for conn in list(self.conns):
            conn.close()
        self.idle.clear()

    def check_done(self) -> None:
        if (self.next_i >= self.count and not self.pending and not self.inflight
                and not self.done.done()):
            self.done.set_result(None)


def _request_bytes(method: str, target: str, host: str, body: bytes,
                   headers: Sequence[tuple[str, str]]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "User-Agent: openloop"]
    names = {name.lower() for name, _ in headers}
    if "content-type" not in names:
        lines.append("Content-Type: application/json")
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def run_async(url: str, rate: float, duration: float, bodies: Sequence[bytes], *,
                    connections: int = 64, headers: Sequence[tuple[str, str]] = (),
                    timeout: float = 10.0, precise_timer: bool = True) -> Result:
    """Offer ``round(rate * duration)`` POSTs to ``url`` at ``rate``/s; see the module doc.

    ``timeout``: how long after the last intended send to wait for outstanding answers; what
    is still queued or in flight then is counted as unanswered.
    """
    if rate <= 0 or duration <= 0 or connections < 1:
        raise ValueError("rate, duration and connections must be positive")
    if not bodies:
        raise ValueError("no bodies")
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"only http:// URLs are supported, not {url!r}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    requests = [_request_bytes("POST", target, parts.netloc, bytes(b), headers) for b in bodies]
    count = round(rate * duration)
    loop = asyncio.get_running_loop()
    gen = _Generator(loop, parts.hostname, parts.port or 80, requests, rate, count, connections)
    gen.connecting = connections
    old_handler = loop.get_exception_handler()
    loop.set_exception_handler(gen.loop_exception)
    try:
        return await _run(gen, url, duration, timeout, precise_timer)
    finally:
        loop.set_exception_handler(old_handler)


async def _run(gen: _Generator, url: str, duration: float, timeout: float,
               precise_timer: bool) -> Result:
    loop, connections, count = gen.loop, gen.max_conns, gen.count
    try:
        await asyncio.gather(*(gen.connect(initial=True) for _ in range(connections)))
    except OSError as exc:
        gen.close()
        raise ConnectionError(f"cannot open {connections} connections to {url}: {exc}") from exc
    gen.timer = timer = _make_timer(loop, gen.tick, precise_timer)
    cpu0 = time.process_time()
    gen.start = time.monotonic() + 0.005
    timer.arm(gen.start)
    try:
        await asyncio.wait([gen.done], timeout=duration + timeout + 0.005)
        if gen.done.done():
            gen.done.result()  # raises what a callback raised
    finally:
        cpu = time.process_time() - cpu0
        wall = time.monotonic() - gen.start
        timer.close()
        unanswered = gen.inflight + len(gen.pending) + (count - gen.next_i)
        gen.close()
    if gen.protocol_errors and not gen.status:
        raise RuntimeError(f"no valid HTTP response from {url}: {gen.protocol_errors[0]}")
    latencies, service, lags = sorted(gen.latencies), sorted(gen.service), sorted(gen.lags)
    return Result(
        url=url, offered_rate=gen.rate, duration=duration, count=count, connections=connections,
        elapsed=max(gen.last_response - gen.start, 0.0), status=dict(sorted(gen.status.items())),
        connection_errors=gen.connection_errors, unanswered=unanswered, late_starts=gen.late,
        queued=gen.queued, reconnects=gen.reconnects,
        client_cpu=cpu / wall if wall > 0 else 0.0,
        timer=timer.name, latency_pct=_pct_ms(latencies), service_pct=_pct_ms(service),
        send_lag_pct=_pct_ms(lags), latencies_ms=[x * 1000 for x in latencies])


def run(url: str, rate: float, duration: float, bodies: Sequence[bytes], *,
        connections: int = 64, headers: Sequence[tuple[str, str]] = (), timeout: float = 10.0,
        precise_timer: bool = True) -> Result:
    """Synchronous ``run_async`` on a fresh uvloop event loop."""
    return uvloop.run(run_async(url, rate, duration, bodies, connections=connections,
                                headers=headers, timeout=timeout, precise_timer=precise_timer))


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"not 'Name: value': {text!r}")
    return name.strip(), value.strip()


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("url")
    ap.add_argument("--rate", type=float, required=True, help="offered requests per second")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds (default 10)")
    ap.add_argument("--connections", type=int, default=64, help="pool size (default 64)")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--bodies", type=Path,
                       default=Path(__file__).resolve().parent / ".bench" / "bodies.txt",
                       help="one request body per line (default loadtests/.bench/bodies.txt)")
    group.add_argument("--body", help="a single request body")
    ap.add_argument("-H", "--header", type=_header, action="append", default=[],
                    help="extra request header 'Name: value' (repeatable)")
    ap.add_argument("--timeout", type=float, default=10.0,
                    help="seconds to wait for outstanding answers after the last send")
    ap.add_argument("--loop-timer", action="store_true",
                    help="schedule with the event loop's timers instead of a timerfd")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    try:
        bodies = [args.body.encode()] if args.body is not None else load_bodies(args.bodies)
        result = run(args.url, args.rate, args.duration, bodies, connections=args.connections,
                     headers=args.header, timeout=args.timeout,
                     precise_timer=not args.loop_timer)
    except (OSError, RuntimeError, ValueError) as exc:  # ConnectionError is an OSError
        sys.exit(f"openloop: {exc}")
    if args.json:
        sys.stdout.buffer.write(msgspec.json.encode(result.summary()) + b"\n")
    else:
        print(result.report())


if __name__ == "__main__":
    main()
