"""Sentinel discovery for ``redis+sentinel://`` URLs: which server is the primary now.

``redis+sentinel://[[user]:password@]host1[:port],host2[:port],.../master_name[/db]``
(``rediss+sentinel://`` for TLS to sentinels and servers alike; default sentinel port 26379;
``?sentinel_password=...`` when the sentinels require AUTH). Each sentinel is asked in turn,
over a short-lived connection, ``SENTINEL get-master-addr-by-name``; the first answer wins and
that sentinel is asked first next time. :class:`~router.state.wire.Wire` asks again on every
reconnect — after a lost connection or a ``READONLY``/``LOADING``/``MASTERDOWN`` reply — and
checks with ``ROLE`` that the named server really is a primary (a sentinel may still name the
old one for a moment during a failover).
"""

from __future__ import annotations

import ssl
import urllib.parse
from dataclasses import dataclass

from router.state._oneshot import ask, first_answer, host_port

__all__ = ["SentinelTarget", "ask_sentinels", "parse_sentinel_url"]

SCHEMES = ("redis+sentinel", "rediss+sentinel", "valkey+sentinel", "valkeys+sentinel")


@dataclass(slots=True)
class SentinelTarget:
    sentinels: list[tuple[str, int]]
    master: str
    db: int
    username: str | None
    password: str | None
    sentinel_password: str | None
    tls: bool


def parse_sentinel_url(url: str) -> SentinelTarget:
    """Raises ``ValueError`` (with the expected form) for a malformed URL."""
    scheme, _, rest = url.partition("://")
    netloc, _, tail = rest.partition("/")
    tail, _, query = tail.partition("?")
    userinfo, _, hosts = netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    parts = [p for p in tail.split("/") if p]
    options = urllib.parse.parse_qs(query)
    try:
        sentinels = [host_port(h, 26379) for h in hosts.split(",") if h]
        db = int(parts[1]) if len(parts) > 1 else int(options.get("db", ["0"])[0])
    except ValueError:
        sentinels, db = [], 0
    if scheme not in SCHEMES or not sentinels or not parts:
        raise ValueError(f"malformed Sentinel URL {url!r}: expected "
                         "redis+sentinel://[user:password@]host1:26379,host2:26379/master_name")
    return SentinelTarget(
        sentinels=sentinels, master=urllib.parse.unquote(parts[0]), db=db,
        username=urllib.parse.unquote(user) or None,
        password=urllib.parse.unquote(password) if userinfo else None,
        sentinel_password=options.get("sentinel_password", [None])[0],
        tls=scheme.startswith(("rediss", "valkeys")))


async def _ask(target: SentinelTarget, host: str, port: int,
               context: ssl.SSLContext | None) -> tuple[str, int]:
    commands: list[tuple[str, ...]] = []
    if target.sentinel_password:
        commands.append(("AUTH", target.sentinel_password))
    commands.append(("SENTINEL", "get-master-addr-by-name", target.master))
    answer = await ask(host, port, commands, context)
    if not isinstance(answer, list) or len(answer) != 2:
        raise ConnectionError(f"does not know a primary named {target.master!r}")
    return answer[0].decode(), int(answer[1])


async def ask_sentinels(target: SentinelTarget, *, timeout: float,
                        context: ssl.SSLContext | None) -> tuple[str, int]:
    """The primary's address from the first sentinel that answers; ``ConnectionError`` listing
    what each said when none does."""
    return await first_answer(
        target.sentinels, lambda host, port: _ask(target, host, port, context),
        timeout=timeout, none=f"no sentinel named a primary for {target.master!r}")
