"""Short-lived connections for discovery: asking the sentinels for the primary
(``_sentinel.py``), a cluster node for its slot map (``_cluster.py``), and following an ``ASK``
redirection (``wire.py``). One request and its replies, then the connection is closed: these
are rare, so they stay out of the multiplexed hot-path connection."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import hiredis

__all__ = ["ask", "auth_commands", "exchange", "first_answer", "host_port"]

T = TypeVar("T")


def host_port(item: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[ipv6]:port`` as an address."""
    if item.startswith("["):  # [ipv6]:port
        host, _, rest = item[1:].partition("]")
        return host, int(rest.lstrip(":") or default_port)
    host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
    return host or "127.0.0.1", int(port or default_port)


def auth_commands(username: str | None, password: str | None) -> list[tuple[str, ...]]:
    if password is None:
        return []
    return [("AUTH", password) if username is None else ("AUTH", username, password)]


async def exchange(host: str, port: int, packed: bytes, count: int,
                   context: ssl.SSLContext | None) -> list[object]:
    """Send ``packed`` (``count`` commands) over a short-lived connection; their replies
    (``hiredis.ReplyError`` values inline)."""
    reader, writer = await asyncio.open_connection(host, port, ssl=context)
    try:
        writer.write(packed)
        parser = hiredis.Reader()
        replies: list[object] = []
        while len(replies) < count:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("closed the connection")
            parser.feed(data)
            while (reply := parser.gets()) is not False:
                replies.append(reply)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return replies


async def ask(host: str, port: int, commands: Sequence[tuple[str, ...]],
              context: ssl.SSLContext | None) -> object:
    """The last command's reply; ``ConnectionError`` if any command was refused (AUTH)."""
    replies = await exchange(host, port, b"".join(hiredis.pack_command(c)  # type: ignore[arg-type]
                                                  for c in commands), len(commands), context)
    for reply in replies:
        if isinstance(reply, hiredis.ReplyError):
            raise ConnectionError(f"refused: {reply}")
    return replies[-1]


async def first_answer(peers: list[tuple[str, int]], ask_one: Callable[[str, int], Awaitable[T]],
                       *, timeout: float, none: str) -> T:
    """What the first of ``peers`` to answer says (``ask_one``, within ``timeout`` each, in
    order); that peer moves to the front, asked first next time. ``ask_one`` may add peers
    at the end (a cluster's map names nodes the seeds did not). An ``OSError`` (a
    ``ConnectionError`` for "answered, but not with what we need") or a timeout is that
    peer's problem; when every peer has one: ``ConnectionError`` saying ``none`` and what each
    said. The sentinels' and the cluster's discovery (``_sentinel.py``, ``_cluster.py``)."""
    problems = []
    for index, (host, port) in enumerate(list(peers)):
        try:
            async with asyncio.timeout(timeout):
                answer = await ask_one(host, port)
        except (OSError, TimeoutError) as exc:
            problems.append(f"{host}:{port}: {exc or type(exc).__name__}")
            continue
        if index:
            peers.insert(0, peers.pop(index))
        return answer
    raise ConnectionError(f"{none} ({'; '.join(problems)})")
