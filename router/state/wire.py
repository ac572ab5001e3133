"""One multiplexed Redis connection per Store: asyncio Protocol + hiredis, no connection pool.

Why not ``redis.asyncio.Redis``: measured on this machine class, one redis-py round trip costs
~130 µs of client CPU (connection pool lock, event dispatch, retry wrapper, per-call timeout
task) and a pipeline of three ~270 µs; the same PING through this protocol costs ~25-35 µs.
Round trips decide the service's throughput (docs/architecture.md, performance facts), so
the hot path uses this.

How it works: every call packs its command(s) with ``hiredis.pack_command`` and queues them as
one piece (so a batch, e.g. MULTI…EXEC, is never interleaved with another task's commands),
then appends a waiter to a FIFO; the pieces queued during one event-loop iteration go out in one
``transport.write`` (automatic pipelining). Redis answers in order; ``data_received`` feeds
hiredis and hands each reply to the oldest waiter. Many tasks share the connection, and Redis
sees one pipelined stream, which is also the cheapest for the server.

Failure handling: a cancelled caller's waiter still consumes its reply (the FIFO stays aligned).
A call that times out means the server stopped answering: the connection is aborted, every
pending waiter fails with ``ConnectionError``, and the next call reconnects.
Never send blocking commands (BLPOP, XREAD BLOCK, ...) here: they would stall every other
caller; background loops that need them open their own :class:`Wire`. The one exception is
``WAIT`` (:meth:`Wire.wait_replicas`, LEADROUTER_REDIS_WAIT_REPLICAS): it must run on the
connection that wrote, bounded by its own timeout, and callers of one flush share one WAIT.

Connection modes (docs/operations.md, "Redis high availability"): ``redis://``/``unix://``;
``rediss://`` (``_tls.py``); ACL users (``AUTH user password``); ``redis+sentinel://``
(``_sentinel.py``: the primary asked of the sentinels on every (re)connect, checked with
``ROLE``); ``redis+cluster://`` (``_cluster.py``: the primary of the deployment's one slot, from
``CLUSTER SLOTS``; ``MOVED`` re-discovers and retries a command once, ``ASK`` sends it once with
``ASKING`` to the named node). A ``READONLY``/``LOADING``/``MASTERDOWN``/``MOVED``/``CLUSTERDOWN``
reply drops the connection so the next call reconnects — to whatever the URL, sentinels or
slot map name then. Failed reconnects back off (50 ms doubling to 1 s); meanwhile calls fail at
once with ``ConnectionError`` (the store's "Redis unavailable": 503 + Retry-After). Why not
redis-py's Sentinel/Cluster/TLS support: the client CPU per round trip above; the modes only
change how a connection is made, not the per-call path (cluster: one test per batch).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import ssl
import urllib.parse
from collections.abc import Sequence
from typing import Any, cast

import hiredis

import router.state._cluster as _cluster  # noqa: PLR0402 (not via the package: no cycle)
import router.state._oneshot as _oneshot  # noqa: PLR0402 (not via the package: no cycle)
from router.state._sentinel import SCHEMES as SENTINEL_SCHEMES
from router.state._sentinel import SentinelTarget, ask_sentinels, parse_sentinel_url
from router.state._tls import TlsOptions, make_context, tls_options

__all__ = ["Arg", "ReplyError", "SetupError", "TlsOptions", "Wire", "bulk", "tls_options"]

Arg = str | bytes | int | float


def bulk(value: str | bytes) -> bytes:
    """``value`` as a RESP bulk string. Commands with many arguments (the commit script's ~60
    keys) are cheaper to assemble from cached fragments than to pack argument by argument."""
    data = value.encode() if isinstance(value, str) else value
    return b"$%d\r\n%b\r\n" % (len(data), data)


class ReplyError(Exception):
    """An error reply from the server (``-ERR ...``), returned inline by the reader."""


class SetupError(ConnectionError):
    """The server is there but refuses this client: wrong password or user, a certificate that
    does not verify. A configuration problem, not an outage (start-up stops on it)."""


# Replies after which this connection no longer talks to the primary: reconnect.
_DEMOTED = ("READONLY", "LOADING", "MASTERDOWN", "MOVED", "CLUSTERDOWN")
_BACKOFF_FIRST, _BACKOFF_MAX = 0.05, 1.0


class _Batch:
    __slots__ = ("deadline", "future", "remaining", "replies")

    def __init__(self, future: asyncio.Future[list[Any]], count: int, deadline: float) -> None:
        self.future = future
        self.remaining = count
        self.replies: list[Any] = []
        self.deadline = deadline


class _Protocol(asyncio.Protocol):
    def __init__(self, timeout: float) -> None:
        self.reader = hiredis.Reader(replyError=ReplyError)
        self.pending: collections.deque[_Batch] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.outgoing: list[bytes] = []
        self.timeout = timeout
        self.watchdog: asyncio.TimerHandle | None = None
        self.demoted = False  # answered READONLY & co.: no longer the primary
        self.last_wait: tuple[int, asyncio.Future[list[Any]]] | None = None

    def expect(self, future: asyncio.Future[list[Any]], count: int) -> None:
        """Queue a waiter for ``count`` replies, due within the timeout.

        One watchdog timer per connection instead of an ``asyncio.timeout`` per call (which
        costs a timer handle and a context manager per round trip): replies come in order, so
        only the oldest waiter can be overdue.
        """
        loop = future.get_loop()
        self.pending.append(_Batch(future, count, loop.time() + self.timeout))
        if self.watchdog is None:
            self.watchdog = loop.call_later(self.timeout, self._check)

    def _check(self) -> None:
        self.watchdog = None
        if self.lost or not self.pending:
            return
        loop = asyncio.get_running_loop()
        overdue = self.pending[0].deadline - loop.time()
        if overdue <= 0:
            # The server is not answering: drop the connection rather than leave every later
            # caller queued behind a reply that may never come.
            self.abort(TimeoutError("Redis did not answer in time"))
        else:
            self.watchdog = loop.call_later(overdue, self._check)

    def send(self, packed: bytes) -> None:
        """Queue ``packed`` for the next flush (the end of this event-loop iteration).

        Every task that runs in the same iteration — under load, the requests whose bytes
        arrived together — shares one write to Redis, and Redis answers them in one read: each
        write costs a syscall and wakes the server on another core, which on virtual machines
        costs more than the Python work of a whole request (measured: docs/BENCHMARKS.md).
        """
        if not self.outgoing:
            asyncio.get_running_loop().call_soon(self.flush)
        self.outgoing.append(packed)

    def flush(self) -> None:
        data, self.outgoing = self.outgoing, []
        self.last_wait = None
        if self.lost or self.transport is None:
            return  # connection_lost already failed their waiters
        self.transport.write(data[0] if len(data) == 1 else b"".join(data))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        pending = self.pending
        while (reply := self.reader.gets()) is not False:
            if not pending:  # a reply nobody asked for: the stream is corrupt
                self.abort(ConnectionError("unexpected reply from Redis"))
                return
            if reply.__class__ is ReplyError and str(reply).startswith(_DEMOTED):
                self.demoted = True
            batch = pending[0]
            batch.replies.append(reply)
            batch.remaining -= 1
            if batch.remaining == 0:
                pending.popleft()
                if not batch.future.done():  # done = the caller was cancelled
                    batch.future.set_result(batch.replies)
        if self.demoted and not self.lost:
            # Later replies on this connection would be the same refusals: fail them now, and
            # let the next call reconnect to the primary.
            self.abort(ConnectionError("Redis is no longer the primary (READONLY, LOADING, "
                                       "MASTERDOWN, MOVED or CLUSTERDOWN); reconnecting"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        error: OSError = (exc if isinstance(exc, TimeoutError) else
                          ConnectionError(f"connection to Redis lost: "
                                          f"{exc or 'closed by the server'}"))
        while self.pending:
            future = self.pending.popleft().future
            if not future.done():
                future.set_exception(error)

    def abort(self, exc: Exception) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.abort()  # connection_lost follows and fails the waiters
        self.connection_lost(exc)


class Wire:
    """A lazily (re)connected, multiplexed connection to the server at ``url``.

    ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` for TLS (``tls``: CA, client
    certificate, server name), ``unix:///path/to.sock?db=N``,
    ``redis+sentinel://[[user]:password@]h1[:port],h2,.../master_name[/db]``,
    ``redis+cluster://[[user]:password@]h1[:port],h2,...`` (the primary of the slot of
    ``hash_tag``, keys.py: every key of the deployment is there). Errors:
    ``ConnectionError``/``TimeoutError`` (builtins, both OSError) when the server cannot be
    reached or answered too late (:class:`SetupError` when it refuses this client); error
    replies come back as :class:`ReplyError` values inside the reply list of :meth:`batch` and
    are raised by :meth:`call`. Counters for metrics: ``reconnects`` (connections made after
    the first), ``failovers`` (a new primary address, or a server that stopped being primary),
    ``wait_timeouts`` (WAIT answered fewer replicas than asked), ``redirections`` (MOVED or
    ASK replies followed, cluster mode).
    """

    def __init__(self, url: str, *, timeout: float = 2.0, connect_timeout: float = 1.0,
                 tls: TlsOptions | None = None, hash_tag: str = "lr") -> None:
        self.url = url
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.tls = tls or TlsOptions()
        self.sentinel: SentinelTarget | None = None
        self.cluster: _cluster.ClusterTarget | None = None
        self.slot = _cluster.key_slot(hash_tag)
        self._parse(url)
        self._proto: _Protocol | None = None
        self._lock = asyncio.Lock()
        self._address: tuple[str, int] | None = None
        self._backoff = 0.0
        self._retry_at = 0.0
        self._last_error: OSError | None = None
        self.reconnects = self.failovers = self.wait_timeouts = self.redirections = 0

    def _parse(self, url: str) -> None:
        scheme = url.partition("://")[0]
        if scheme in SENTINEL_SCHEMES:
            self.sentinel = target = parse_sentinel_url(url)
            self.unix_path, self.host, self.port = None, "", 0
            self.db, self.username, self.password = target.db, target.username, target.password
            self.ssl = make_context(self.tls) if target.tls else None
            return
        if scheme in _cluster.SCHEMES:
            self.cluster = cluster = _cluster.parse_cluster_url(url)
            self.unix_path, self.host, self.port, self.db = None, "", 0, 0
            self.username, self.password = cluster.username, cluster.password
            self.ssl = make_context(self.tls) if cluster.tls else None
            return
        u = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qs(u.query)
        if u.scheme not in ("redis", "rediss", "unix", "valkey", "valkeys"):
            raise ValueError(f"unsupported Redis URL scheme in {url!r} (redis://, rediss://, "
                             "unix://, redis+sentinel://, redis+cluster://)")
        self.unix_path = u.path if u.scheme == "unix" else None
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or 6379
        path_db = u.path.strip("/") if u.scheme != "unix" else ""
        self.db = int(query.get("db", [path_db or "0"])[0])
        self.username = urllib.parse.unquote(u.username) if u.username else None
        self.password = urllib.parse.unquote(u.password) if u.password else None
        self.ssl = make_context(self.tls) if u.scheme in ("rediss", "valkeys") else None

    async def _open(self, make: Any, host: str, port: int) -> _Protocol:
        loop = asyncio.get_running_loop()
        if self.unix_path:
            _, proto = await loop.create_unix_connection(make, self.unix_path)
            return cast(_Protocol, proto)
        server_name = (self.tls.server_name or host) if self.ssl else None
        try:
            _, proto = await loop.create_connection(make, host, port, ssl=self.ssl,
                                                    server_hostname=server_name)
        except ssl.SSLCertVerificationError as exc:
            raise SetupError(f"the TLS certificate of Redis at {host}:{port} does not verify "
                             f"({exc.verify_message}) — set LEADROUTER_REDIS_TLS_CA_FILE to the "
                             "CA that signed it, or LEADROUTER_REDIS_TLS_SERVER_NAME to the "
                             "name it was issued for") from None
        return cast(_Protocol, proto)

    async def _connect(self) -> _Protocol:
        make = functools.partial(_Protocol, self.timeout)
        host, port = self.host, self.port
        if self.sentinel is not None or self.cluster is not None:  # a timeout per node asked
            host, port = await (
                ask_sentinels(self.sentinel, timeout=self.connect_timeout, context=self.ssl)
                if self.sentinel is not None else _cluster.ask_cluster(
                    cast(_cluster.ClusterTarget, self.cluster), self.slot,
                    timeout=self.connect_timeout, context=self.ssl))
            if self._address is not None and (host, port) != self._address:
                self.failovers += 1
            self._address = (host, port)
        async with asyncio.timeout(self.connect_timeout):
            proto = await self._open(make, host, port)
        handshake: list[tuple[Arg, ...]] = [*_oneshot.auth_commands(self.username, self.password)]
        if self.db:
            handshake.append(("SELECT", self.db))
        if self.sentinel is not None:
            handshake.append(("ROLE",))
        if handshake:
            replies = await self._send(proto, handshake)
            for reply in replies:
                if isinstance(reply, ReplyError):
                    proto.abort(ConnectionError(str(reply)))
                    fix = (" — check the user name and password in LEADROUTER_REDIS_URL"
                           if str(reply).startswith(("WRONGPASS", "NOAUTH", "NOPERM")) else "")
                    raise SetupError(f"Redis refused the connection setup: {reply}{fix}")
            if self.sentinel is not None and replies[-1][0] != b"master":
                proto.abort(ConnectionError("not the primary"))
                raise ConnectionError(f"the sentinels named {self._address} as primary, but "
                                      "it is a replica (failover in progress)")
        return proto

    async def _protocol(self) -> _Protocol:
        proto = self._proto
        if proto is not None and not proto.lost:
            return proto
        async with self._lock:  # concurrent callers share one reconnect attempt
            if self._proto is not None and not self._proto.lost:
                return self._proto
            loop = asyncio.get_running_loop()
            if loop.time() < self._retry_at and self._last_error is not None:
                # Backing off: fail now rather than queue every caller behind attempts.
                raise ConnectionError(f"Redis unavailable (retrying): {self._last_error}")
            had = self._proto is not None
            demoted = self._proto is not None and self._proto.demoted
            try:
                self._proto = await self._connect()
            except OSError as exc:  # TimeoutError and SetupError included
                self._backoff = min(max(self._backoff * 2, _BACKOFF_FIRST), _BACKOFF_MAX)
                self._retry_at = loop.time() + self._backoff
                self._last_error = exc
                raise
            if had or self._last_error is not None:
                self.reconnects += 1
            if demoted and self.sentinel is None and self.cluster is None:
                self.failovers += 1  # (with sentinels: counted when the address changes)
            self._backoff, self._last_error = 0.0, None
            return self._proto

    async def _send(self, proto: _Protocol, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        packed = b"".join(hiredis.pack_command(tuple(c)) for c in commands)  # type: ignore[arg-type]
        return await self._send_packed(proto, packed, len(commands))

    async def _send_packed(self, proto: _Protocol, packed: bytes, count: int) -> list[Any]:
        if proto.lost or proto.transport is None:
            raise ConnectionError("connection to Redis lost")
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        proto.expect(future, count)
        proto.send(packed)
        return await future

    async def batch(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """Send ``commands`` in one write; their replies (ReplyError values inline), in order.
        No commands, no write: nothing would ever answer an empty write."""
        if not commands:
            return []
        replies = await self._send(await self._protocol(), commands)
        if self.cluster is not None:
            for reply in replies:
                if isinstance(reply, ReplyError) and str(reply).startswith(("MOVED", "ASK")):
                    # The connection is being dropped (MOVED) and the next call goes to the
                    # slot's new primary; a batch (MULTI...EXEC above all) is not replayed.
                    self.redirections += 1
                    raise ConnectionError(f"the deployment's slot moved ({reply}); retry")
        return replies

    async def call(self, *args: Arg) -> Any:
        """One command; raises its error reply as :class:`ReplyError`."""
        (reply,) = await self._send(await self._protocol(), (args,))
        if isinstance(reply, ReplyError):
            if self.cluster is not None and str(reply).startswith(("MOVED", "ASK")):
                return await self._redirected(reply, hiredis.pack_command(args))  # type: ignore[arg-type]
            raise reply
        return reply

    async def call_packed(self, packed: bytes) -> Any:
        """One command already in RESP form (see :func:`bulk`); raises its error reply."""
        (reply,) = await self._send_packed(await self._protocol(), packed, 1)
        if isinstance(reply, ReplyError):
            if self.cluster is not None and str(reply).startswith(("MOVED", "ASK")):
                return await self._redirected(reply, packed)
            raise reply
        return reply

    async def _redirected(self, reply: ReplyError, packed: bytes) -> Any:
        """Follow one redirection of a single command: ``MOVED`` — the slot has a new owner
        (failover, resharding): reconnect to it (re-discovered) and send again; ``ASK`` — the
        slot is being migrated and this key is already there: ``ASKING`` + the command once
        on a short-lived connection to that node. A second redirection is an error."""
        self.redirections += 1
        if str(reply).startswith("MOVED"):
            (again,) = await self._send_packed(await self._protocol(), packed, 1)
        else:
            host, _, port = str(reply).split()[2].rpartition(":")
            head = [*_oneshot.auth_commands(self.username, self.password), ("ASKING",)]
            async with asyncio.timeout(self.timeout):
                *_, again = await _oneshot.exchange(host, int(port), b"".join(
                    hiredis.pack_command(c) for c in head) + packed,  # type: ignore[arg-type]
                    len(head) + 1, self.ssl)
        if isinstance(again, hiredis.ReplyError):
            raise ReplyError(str(again))
        return again

    async def wait_replicas(self, replicas: int, timeout_ms: int) -> int:
        """``WAIT replicas timeout_ms`` on this connection: how many replicas have every write
        sent on it so far. Callers whose WAITs would go out back to back in one flush share
        one (it covers the writes of all of them)."""
        proto = await self._protocol()
        shared = proto.last_wait
        if shared is not None and shared[0] == len(proto.outgoing):
            future = shared[1]
        else:
            future = asyncio.get_running_loop().create_future()
            proto.expect(future, 1)
            proto.send(hiredis.pack_command(("WAIT", replicas, timeout_ms)))  # type: ignore[arg-type]
            proto.last_wait = (len(proto.outgoing), future)
        (reply,) = await asyncio.shield(future)
        if isinstance(reply, ReplyError):
            raise reply
        if int(reply) < replicas:
            self.wait_timeouts += 1
        return int(reply)

    async def close(self) -> None:
        proto, self._proto = self._proto, None
        if proto is not None and proto.transport is not None and not proto.lost:
            proto.transport.close()
            proto.lost = True
