"""Talking to an embedded valkey-server without a client library, and recognising its
process: a one-command RESP exchange on a raw socket, its ``INFO``, whether a pid is the live
server of a data dir, a free port. For router/state/embedded.py."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

__all__ = ["HOST", "RespError", "free_port", "is_valkey_process", "read_int", "resp_call",
           "server_info"]

HOST = "127.0.0.1"


class RespError(Exception):
    """The server answered with a RESP error (e.g. ``LOADING``)."""


def _connect(port: int | Path, timeout: float) -> socket.socket:
    if isinstance(port, Path):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(str(port))
        except OSError:
            sock.close()
            raise
        return sock
    return socket.create_connection((HOST, port), timeout=timeout)


def resp_call(port: int | Path, *args: str, timeout: float = 1.0) -> bytes | None:
    """One command on a raw socket (TCP port, or Unix socket path): its simple/bulk/integer
    reply, or None if the server hung up. Not redis-py, whose default retry-with-backoff makes
    each refused connection take seconds."""
    parts = [a.encode() for a in args]
    payload = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    with _connect(port, timeout) as sock:
        sock.sendall(payload)
        with sock.makefile("rb") as reply:
            line = reply.readline()
            if not line:
                return None  # SHUTDOWN succeeds by closing the connection
            kind, rest = line[:1], line[1:].rstrip(b"\r\n")
            if kind == b"-":
                raise RespError(rest.decode(errors="replace"))
            if kind == b"$":
                size = int(rest)
                return b"" if size < 0 else reply.read(size + 2)[:size]
            return rest


def server_info(port: int | Path) -> dict[str, str]:
    text = (resp_call(port, "INFO", "server") or b"").decode(errors="replace")
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def is_valkey_process(pid: int, data_dir: Path) -> bool:
    """``pid`` is a live valkey-server serving ``data_dir``: not dead, not a zombie, not a pid
    reused by another program, not the server of another data dir (tests run many at once)."""
    if not Path("/proc/self").exists():  # macOS: no /proc, and no cwd check
        ps = ["ps", "-o", "stat=,comm=", "-p", str(pid)]
        out = subprocess.run(ps, capture_output=True, text=True, check=False)  # noqa: S603
        fields = out.stdout.split(None, 1)
        return len(fields) == 2 and "Z" not in fields[0] and "valkey-server" in fields[1]
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))  # valkey chdirs to its `dir`
    except OSError:  # gone, a zombie (no cwd), or another user's (so not one we started)
        return False
    # "pid (comm) state ...": comm may contain spaces and parens, so split on the last ")".
    comm, _, rest = stat.partition("(")[2].rpartition(")")
    # A zombie keeps its pid until reaped, and the container's pid 1 may never reap orphans.
    return comm == "valkey-server" and rest[1:2] not in ("Z", "X") and cwd == data_dir


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])
