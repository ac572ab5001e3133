"""Does a lead cost the worker more *work* when it comes alone? Instructions per lead by
concurrency, under valgrind's callgrind, through the real server.

    uv run python loadtests/concurrency_instructions.py [--concurrency 1,32] [--seconds 20]

Needs Debian's ``valgrind`` and ``wrk``. One uvicorn worker (uvloop, httptools) runs under
callgrind with instrumentation off; after a warm-up, for each ``--concurrency`` in turn it is
switched on (``callgrind_control``) while wrk sends the benchmark's varied leads for
``--seconds``, then dumped: user-space instructions per lead at that concurrency. At a fixed
rate the worker's core idles between leads and the VM charges more CPU time per lead than at
the maximum (``bench_service.py``); equal counts here say the extra time is not extra work in
the process but the same instructions running slower (caches, wake-ups) and the kernel's
share (system time).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "loadtests"))

from bench_service import (  # noqa: E402
    BENCH,
    free_port,
    pinned_valkey,
    service_env,
    stop,
    wait_listening,
    write_bodies,
)


def _requests(url: str, seconds: int, connections: int) -> int:
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
         "--timeout", "10s", "-s", str(ROOT / "loadtests" / "leads.lua"), url],
        capture_output=True, text=True, check=True,
        env={**os.environ, "BODIES": str(BENCH / "bodies.txt")}).stdout
    return int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]


def _control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], capture_output=True, check=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--concurrency", default="1,32", help="wrk concurrencies, in this order")
    ap.add_argument("--seconds", type=int, default=20, help="measured seconds per concurrency")
    args = ap.parse_args()
    for tool in ("valgrind", "callgrind_control", "wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install valgrind wrk util-linux")
    write_bodies(5000)
    out = Path(tempfile.mkdtemp(prefix="lr-cgconc-"))
    with pinned_valkey("lr-cgconc-") as (url, _):
        port = free_port()
        cmd = ["taskset", "-c", "0", "valgrind", "--tool=callgrind", "--instr-atstart=no",
               f"--callgrind-out-file={out}/cg.%p", sys.executable, "-m", "uvicorn",
               "router.app.application:app_from_env", "--factory", "--port", str(port),
               "--loop", "uvloop", "--http", "httptools", "--no-access-log",
               "--log-level", "warning"]
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **service_env(url),
                                                    "PYTHONHASHSEED": "0"})
        try:
            time.sleep(10)  # valgrind starts slowly; wait_listening gives up after 30 s
            wait_listening(proc, port, "the server under callgrind")
            target = f"http://127.0.0.1:{port}/v1/leads"
            _requests(target, 15, 8)  # warm-up: imports, caches, memos
            for n, c in enumerate(int(x) for x in args.concurrency.split(",")):
                _control("-z", str(proc.pid))
                _control("-i", "on", str(proc.pid))
                leads = _requests(target, args.seconds, c)
                _control("-i", "off", str(proc.pid))
                _control("-d", f"c{c}", str(proc.pid))
                dump = out / f"cg.{proc.pid}.{n + 1}"
                for _ in range(50):
                    if dump.exists() and "totals:" in dump.read_text():
                        break
                    time.sleep(0.2)
                totals = re.findall(r"^(?:totals|summary): (\d+)", dump.read_text(), re.M)
                instructions = int(totals[-1]) if totals else 0
                print(f"wrk -c{c:<3d} {leads:6d} leads under callgrind: "
                      f"{instructions / max(leads, 1):10,.0f} instructions per lead", flush=True)
        finally:
            stop(proc)
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
