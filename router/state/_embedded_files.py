"""The files of an embedded valkey-server's data dir: where each one is, the config written
on every start, the port file, the start/stop lock, the log's tail and the cleanup of run files
(the list and the why of each are in router/state/embedded.py)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from router.state._embedded_probe import HOST, read_int

__all__ = ["DataDir"]

_SUN_PATH_MAX = 100  # AF_UNIX paths: 107 bytes on Linux (104 on macOS), with room to spare


def _quote(value: str | Path) -> str:
    """Quote a config value: valkey.conf splits on spaces and honours "..." with escapes."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


class DataDir:
    """The paths of one data dir (canonical: compared with the server's cwd and config_file to
    recognise it) and what is written there."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.log = path / "valkey.log"
        self.conf = path / "valkey.conf"
        self.pidfile = path / "valkey.pid"
        self.portfile = path / "valkey.port"
        # The service reaches its own server through a Unix socket when the path fits in
        # sun_path: no TCP stack on either side of every round trip (a few % of a lead's CPU
        # at most on the benchmark VM, within its noise; docs/BENCHMARKS.md). TCP only when
        # asked for (or when the path is too long): tools use `valkey-cli -s <socket>`.
        self.socket = path / "valkey.sock"
        self.socket_ok = len(os.fsencode(self.socket)) <= _SUN_PATH_MAX

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise start/stop on this data dir across processes (and threads: flock locks
        belong to the open file description, so each ``open`` here contends separately).
        Closing the file releases it, also when the process dies mid-start."""
        with (self.path / "valkey.lock").open("a") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            yield

    def prepare(self, port: int) -> None:
        """Write the config and the port file for a server about to start on ``port`` (0: no
        TCP, the Unix socket only)."""
        self.conf.write_text(self.config_text(port))
        tmp = self.portfile.with_suffix(".port.tmp")
        tmp.write_text(f"{port}\n")
        os.replace(tmp, self.portfile)  # readers never see a half-written port

    def config_text(self, port: int) -> str:
        # The "why" is written into the file too, for whoever opens it.
        return f"""# Written by leadrouter on every start (router/state/embedded.py); do not edit.
bind {HOST}
port {port}
protected-mode yes
daemonize no
dir {_quote(self.path)}
pidfile {_quote(self.pidfile)}
logfile {_quote(self.log)}
loglevel notice
always-show-logo no
# The AOF is the only persistence: one source of truth, no dump.rdb that could disagree with
# it, no fork for snapshots. everysec loses at most ~1 s of writes on a crash.
appendonly yes
appendfsync everysec
save ""
# Routing state must never be evicted silently: refuse writes instead.
maxmemory-policy noeviction
""" + (f"""# The service's way in (this user only), and the tools' (valkey-cli -s <this path>).
unixsocket {_quote(self.socket)}
unixsocketperm 700
""" if self.socket_ok else "")

    def log_tail(self, offset: int) -> str:
        try:
            with self.log.open("rb") as fh:
                fh.seek(max(offset, fh.seek(0, os.SEEK_END) - 16384))  # a log can be large
                lines = fh.read().decode(errors="replace").splitlines()[-25:]
        except OSError:
            lines = []
        return f"last lines of {self.log}:\n" + "\n".join(f"  {ln}" for ln in lines or ["-"])

    def remove_run_files(self, pid: int | None) -> None:
        # Only remove a pid file that still names the pid we judged dead or stopped; a
        # server that exits uncleanly (e.g. failed bind) leaves it behind.
        if read_int(self.pidfile) == pid or not self.pidfile.exists():
            self.pidfile.unlink(missing_ok=True)
            self.portfile.unlink(missing_ok=True)
