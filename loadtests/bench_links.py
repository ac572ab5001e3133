"""Signed action links: what they add per event delivered, and the cost of the SLA warnings.

    uv run python loadtests/bench_links.py [--events 20000] [--leads 2000]

1. ``ActionLinks.enrich`` on a ``lead.assigned`` event (three tokens: six HMAC-SHA256 and
   three small JSON encodings) and ``LinkSigner.verify`` of one token, in µs, pure CPU: this is
   what each sink's delivery of an event pays, off the request path (the outbox).
2. Against an embedded valkey-server: ``--leads`` leads with deadlines inside the warning
   window, one ``SlaWarner.tick`` warning them all (one ZRANGEBYSCORE per batch, one pipelined
   EVALSHA per lead), then a second tick that finds them all warned: time per lead of each.
Prints its figures; nothing is compared against a stored baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path

from leadrouter_sdk import Event

from router.services.action_links import ActionLinks
from router.services.rules import RulesManager
from router.services.sla_warn import SlaWarner
from router.settings import Settings
from router.state.embedded import EmbeddedValkey
from router.state.models import to_ms
from router.state.store import Store

SECRET = "bench-action-secret-0123456789abcdef"
NOW = dt.datetime(2026, 3, 4, 15, 0, tzinfo=dt.UTC)


def _cpu(links: ActionLinks, events: int) -> None:
    event = Event(id="1772636400000-0", type="lead.assigned", lead_id="ld_01abc", at=NOW,
                  data={"owner": "alice", "pool": "rr", "state": "assigned",
                        "due_at": NOW + dt.timedelta(minutes=10)})
    start = time.perf_counter()
    for _ in range(events):
        enriched = links.enrich(event)
    enrich_us = (time.perf_counter() - start) / events * 1e6
    token = enriched.data["links"]["accept"].rsplit("/", 1)[1]
    start = time.perf_counter()
    for _ in range(events):
        links.verify(token)
    verify_us = (time.perf_counter() - start) / events * 1e6
    print(f"enrich (3 links) per event: {enrich_us:7.1f} µs")
    print(f"verify one token:           {verify_us:7.1f} µs")
    print(f"link URL length:            {len(enriched.data['links']['accept'])} characters")


async def _warnings(store: Store, rules: RulesManager, leads: int) -> None:
    settings = Settings(sla_warn_before=300, sla_batch=200)
    due = to_ms(NOW + dt.timedelta(minutes=4))
    wire = store.wire
    await wire.call("XGROUP", "CREATE", store.keys.outbox, "sink:bench", "$", "MKSTREAM")
    for i in range(leads):
        lead = f"ld_{i:08d}"
        await wire.call("HSET", store.keys.lead(lead), "state", "assigned", "owner", "alice",
                        "pool", "rr", "due_at", str(due), "sla", "sla-hot",
                        "assigned_at", str(to_ms(NOW - dt.timedelta(minutes=6))),
                        "decision", "{}")
        await wire.call("ZADD", store.keys.sla_due, due, lead)
    warner = SlaWarner(store=store, rules=rules, settings=settings, clock=lambda: NOW)
    start = time.perf_counter()
    written = await warner.tick()
    first = time.perf_counter() - start
    again = SlaWarner(store=store, rules=rules, settings=settings, clock=lambda: NOW)
    start = time.perf_counter()
    assert await again.tick() == 0
    second = time.perf_counter() - start
    print(f"warning tick, {written} leads to warn: {first / leads * 1e6:7.1f} µs per lead")
    print(f"warning tick, all warned already:   {second / leads * 1e6:7.1f} µs per lead")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--leads", type=int, default=2_000)
    args = parser.parse_args()

    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            server = EmbeddedValkey(Path(tmp) / "valkey", port=0)
            server.start()
            try:
                store = await Store.connect(server.url)
                links = ActionLinks(settings=Settings(action_secret=SECRET,
                                                      public_url="https://leads.example.com"),
                                    store=store, clock=lambda: NOW)
                _cpu(links, args.events)
                rules = RulesManager(Path(__file__).resolve().parents[1] / "rules")
                rules.load_initial()
                await _warnings(store, rules, args.leads)
                await store.close()
            finally:
                server.stop()

    asyncio.run(run())


if __name__ == "__main__":
    main()
