"""Cluster discovery for ``redis+cluster://`` URLs (or LEADROUTER_REDIS_CLUSTER=true): which
node is the primary of the deployment's slot now.

``redis+cluster://[[user]:password@]host1[:port],host2[:port],...`` (``rediss+cluster://`` for
TLS; default port 6379): seed nodes, any of the cluster's. Every key of one deployment carries
one hash tag (router/state/keys.py: ``lr:`` → ``{lr}``), so all of them live in ONE slot — the
CRC16 (XMODEM) of the tag modulo 16384 — and :class:`~router.state.wire.Wire` keeps its single
multiplexed connection to that slot's primary: the per-call path stays the single-node one.
The seeds (then every node a slot map named) are asked in turn ``CLUSTER SLOTS`` over a
short-lived connection; the node that answered is asked first next time. The wire asks again
on every reconnect: after a lost connection (the primary died: until the cluster promotes a
replica the map names the dead node, the connect fails and backs off), or a ``MOVED`` /
``CLUSTERDOWN`` / ``READONLY`` reply (the slot moved, or the node was demoted).
"""

from __future__ import annotations

import binascii
import ssl
import urllib.parse
from dataclasses import dataclass, field

from router.state._oneshot import ask, auth_commands, first_answer, host_port

__all__ = ["SCHEMES", "ClusterTarget", "ask_cluster", "key_slot", "parse_cluster_url"]

SCHEMES = ("redis+cluster", "rediss+cluster", "valkey+cluster", "valkeys+cluster")
SLOTS = 16384


def key_slot(key: str | bytes) -> int:
    """The cluster slot of ``key`` (its hash tag's, when it has a non-empty ``{...}``)."""
    data = key.encode() if isinstance(key, str) else key
    start = data.find(b"{")
    if start >= 0:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1:end]
    return binascii.crc_hqx(data, 0) % SLOTS


@dataclass(slots=True)
class ClusterTarget:
    nodes: list[tuple[str, int]]  # seeds first, then every node a slot map named
    username: str | None
    password: str | None
    tls: bool
    seen: set[tuple[str, int]] = field(default_factory=set)


def parse_cluster_url(url: str) -> ClusterTarget:
    """Raises ``ValueError`` (with the expected form) for a malformed URL."""
    scheme, _, rest = url.partition("://")
    netloc = rest.partition("/")[0].partition("?")[0]
    userinfo, _, hosts = netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    try:
        nodes = [host_port(h, 6379) for h in hosts.split(",") if h]
    except ValueError:
        nodes = []
    db = rest.partition("/")[2].partition("?")[0].strip("/")
    if scheme not in SCHEMES or not nodes or db not in ("", "0"):
        raise ValueError(f"malformed cluster URL {url!r}: expected "
                         "redis+cluster://[user:password@]host1:6379,host2:6379 (no database: "
                         "a cluster has only db 0)")
    return ClusterTarget(nodes=nodes, username=urllib.parse.unquote(user) or None,
                         password=urllib.parse.unquote(password) if userinfo else None,
                         tls=scheme.startswith(("rediss", "valkeys")), seen=set(nodes))


async def _slots(target: ClusterTarget, host: str, port: int,
                 context: ssl.SSLContext | None) -> list[object]:
    answer = await ask(host, port, [*auth_commands(target.username, target.password),
                                    ("CLUSTER", "SLOTS")], context)
    if not isinstance(answer, list):
        raise ConnectionError(f"unexpected CLUSTER SLOTS reply {answer!r}")
    return answer


def _node(entry: object, fallback: str) -> tuple[str, int]:
    assert isinstance(entry, list)
    host = entry[0].decode() if entry[0] else ""
    return (host if host not in ("", "?") else fallback), int(entry[1])


async def ask_cluster(target: ClusterTarget, slot: int, *, timeout: float,
                      context: ssl.SSLContext | None) -> tuple[str, int]:
    """The address of ``slot``'s primary from the first node that answers with a map that
    covers it; ``ConnectionError`` listing what each node said when none does."""

    async def primary(host: str, port: int) -> tuple[str, int]:
        found = None
        for entry in await _slots(target, host, port, context):
            assert isinstance(entry, list)
            for node in entry[2:]:  # learn every node: seeds may all be gone one day
                address = _node(node, host)
                if address not in target.seen:
                    target.seen.add(address)
                    target.nodes.append(address)
            if int(entry[0]) <= slot <= int(entry[1]):
                found = _node(entry[2], host)
        if found is None:
            raise ConnectionError(f"no node serves slot {slot} (cluster down?)")
        return found

    return await first_answer(target.nodes, primary, timeout=timeout,
                              none=f"no cluster node named the primary of slot {slot}")
