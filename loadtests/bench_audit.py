"""Audit log benchmark: bytes per entry, and the server-side cost of a page.

    uv run python loadtests/bench_audit.py [--entries 20000] [--pages 200]

Starts an embedded valkey-server, appends ``--entries`` entries through the real
:class:`router.services.audit.AuditLog` (a mix of rep status, account owner and API key
entries), then prints ``MEMORY USAGE`` per entry, the time of one append, and the time of a
page of 50 newest first: unfiltered, with a common filter (a third of the entries match) and
with a filter nothing matches (the worst case: one page looks at 5,000 entries at most).
Nothing here is on the lead path: the audit log is written by admin changes only.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from router.services.audit import Actor, AuditLog
from router.services.clock import Clock
from router.state.embedded import EmbeddedValkey
from router.state.store import Store


async def _append(log: AuditLog, i: int) -> None:
    if i % 3 == 0:
        await log.record(Actor("key", "key_0123456789ab"), "rep.status", f"rep:rep{i % 50}", {
            "rep": f"rep{i % 50}", "from": "available", "to": "out_of_office",
            "until": "2026-12-01T09:00:00+00:00"})
    elif i % 3 == 1:
        await log.record(Actor("admin-token"), "account.owner", f"account:acme{i}.com",
                         {"domain": f"acme{i}.com", "from": "rep1", "to": "rep2"})
    else:
        await log.record(Actor("admin-token"), "apikey.created", f"apikey:key_{i:012x}", {
            "key_id": f"key_{i:012x}", "source": "*", "scopes": ["admin"], "rep": None})


async def _pages(log: AuditLog, pages: int, action: str | None = None) -> float:
    start = time.perf_counter()
    for _ in range(pages):
        await log.query(limit=50, action=action)
    return (time.perf_counter() - start) / pages * 1000


async def main(entries: int, pages: int) -> None:
    server = EmbeddedValkey(Path(tempfile.mkdtemp(prefix="lr-bench-audit-")), port=0)
    server.start()
    try:
        store = await Store.connect(f"redis://127.0.0.1:{server.port}/0")
        log = AuditLog(store=store, clock=Clock(), retention_s=400 * 86400)
        start = time.perf_counter()
        for i in range(entries):
            await _append(log, i)
        append_us = (time.perf_counter() - start) / entries * 1e6
        used = await store.wire.call("MEMORY", "USAGE", store.keys.audit, "SAMPLES", "0")
        print(f"entries:                    {entries}")
        print(f"bytes per entry:            {used / entries:.0f}")
        print(f"append (one round trip):    {append_us:.0f} us")
        print(f"page of 50, no filter:      {await _pages(log, pages):.2f} ms")
        print(f"page of 50, action filter:  {await _pages(log, pages, action='rep.status'):.2f} ms")
        rare = await _pages(log, max(1, pages // 10), action="lead.erased")
        print(f"page, filter matching none: {rare:.2f} ms (looks at 5,000 entries at most)")
        await store.close()
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--pages", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.entries, args.pages))
