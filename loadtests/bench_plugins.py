"""Overhead of the plugin machinery on the hot path: the three shipped plugins vs none.

    uv run python loadtests/bench_plugins.py [--leads 4000] [--rounds 5] [--concurrency 16]

In one process, side by side and interleaved round by round (this machine is noisy), it
routes the same synthetic leads through ``LeadService.route`` — prefetch, evaluation of the
shipped ``rules/``, pick-and-commit into an embedded Valkey: everything ``POST /v1/leads`` does
but HTTP — in three configurations:

* ``none``: no plugin host at all (``plugins=None``);
* ``empty``: a plugin host with no plugins (the cost of the checks alone);
* ``three``: email-quality (``score`` + its rule functions), firmographics (``enrich`` from a
  CSV of 600 companies covering half the leads' domains) and webhook (``on_event`` registered;
  delivery runs in the background and is not part of the request path, so it is measured
  separately below).

interleaved in chunks of 200 leads (the order rotating) so load swings hit all three alike,
and reports leads/s with N concurrent tasks (what one worker can do: CPU-bound), client CPU
µs per lead, and the overhead in percent. It also reports the engine-only path (``evaluate``
vs ``PluginHost.evaluate`` + ``enrich``, no Redis) to show the absolute µs the hooks cost, and
the CPU per event of webhook delivery (outbox → ``on_event`` → signed POST to a loopback
receiver).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from leadrouter_email_quality import EmailQuality
from leadrouter_firmographics import Firmographics
from leadrouter_sdk import Lead
from leadrouter_webhook import WebhookPlugin

from router.engine.evaluate import Snapshot, evaluate
from router.plugins.host import PluginHost
from router.services.leads import LeadService
from router.services.rules import RulesManager
from router.settings import Settings
from router.state.embedded import EmbeddedValkey
from router.state.store import Store

ROOT = Path(__file__).resolve().parents[1]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TITLES = ["VP Sales", "Head of Growth", "Engineer", "CTO", "Marketing Manager", "Student",
          "Director of Operations", "Founder", "Analyst", None]
COUNTRIES = ["US", "DE", "GB", "FR", "BR", "IN", "JP", "CA", "AU", "NL"]
FREE = ["gmail.com", "yahoo.com", "outlook.com"]
DISPOSABLE = ["mailinator.com"]
ROLES = ["info", "sales", "support"]


def make_leads(n: int, domains: list[str], seed: int = 7) -> list[tuple[Lead, bytes]]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        r = rnd.random()
        domain = rnd.choice(FREE if r < 0.1 else DISPOSABLE if r < 0.13 else domains)
        local = rnd.choice(ROLES) if rnd.random() < 0.05 else f"person{i}"
        fields: dict[str, Any] = {"email": f"{local}@{domain}", "first_name": "Pat",
                                  "last_name": f"Lee{i}", "title": rnd.choice(TITLES),
                                  "country": rnd.choice(COUNTRIES)}
        if rnd.random() < 0.5:  # half state their size; firmographics fills the others
            fields["employees"] = rnd.choice([5, 50, 400, 2500, 20000])
        if rnd.random() < 0.4:
            fields["budget"] = rnd.choice([5000, 20000, 60000, 250000])
        lead = Lead(**{k: v for k, v in fields.items() if v is not None})
        out.append((lead, f"lead-{i}".encode()))
    return out


def write_companies(path: Path, domains: list[str]) -> None:
    rnd = random.Random(3)
    rows = ["domain,company,employees,industry,revenue"]
    for d in domains:
        rows.append(f"{d},{d.split('.')[0].title()},{rnd.choice([20, 300, 1500, 9000])},"
                    f"{rnd.choice(['Software', 'Retail', 'Finance'])},{rnd.randint(1, 900)}M")
    path.write_text("\n".join(rows) + "\n")


def three_plugins(csv: Path) -> PluginHost:
    host = PluginHost(metrics=True)
    host.register(EmailQuality({}), "email-quality")
    host.register(Firmographics(csv), "firmographics")
    host.register(WebhookPlugin(["http://127.0.0.1:9/hook"], SECRET), "webhook")
    return host


async def route_all(service: LeadService, leads: list[tuple[Lead, bytes]],
                    concurrency: int) -> tuple[float, float]:
    """(leads/s, client CPU µs per lead) routing every lead with N tasks."""
    it = iter(leads)

    async def worker() -> None:
        for lead, body in it:
            outcome, _, _ = await service.route(lead, body=body)
            assert outcome == "created", outcome

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return len(leads) / wall, cpu / len(leads) * 1e6


async def engine_only(manager: RulesManager, host: PluginHost, leads: list[tuple[Lead, bytes]],
                      now: dt.datetime) -> tuple[float, float]:
    """µs per lead: evaluate() alone vs enrich + PluginHost.evaluate (no Redis)."""
    ruleset, snap = manager.current, Snapshot()
    sample = [lead for lead, _ in leads]
    t = time.perf_counter()
    for lead in sample:
        evaluate(ruleset, lead, snap, now=now)
    plain = (time.perf_counter() - t) / len(sample) * 1e6
    t = time.perf_counter()
    for lead in sample:
        enriched, notes = await host.enrich(lead)
        await host.evaluate(ruleset, enriched, snap, now=now, notes=notes)
    hooked = (time.perf_counter() - t) / len(sample) * 1e6
    return plain, hooked


async def webhook_cpu(store: Store, events: int) -> float:
    """Client CPU µs per event delivered by the outbox to the webhook plugin (loopback)."""
    from leadrouter_webhook.receiver import Receiver

    from router.plugins.delivery import Delivery

    with Receiver(SECRET) as receiver:
        host = PluginHost(metrics=False)
        host.register(WebhookPlugin([receiver.url], SECRET), "webhook")
        delivery = Delivery(store, host, poll=0.01)
        await delivery.ensure_groups()
        for i in range(events):
            await store.wire.call("XADD", store.keys.outbox, "*", "type", "lead.assigned",
                                  "lead_id", f"ld_{i}", "at", 1714564800000 + i,
                                  "decision", '{"status":"mql","score":{"total":55}}')
        cpu = time.process_time()
        while delivery.delivered < events:
            if not await delivery.round("webhook"):
                await asyncio.sleep(0.001)
        cpu = time.process_time() - cpu
        # the receiver's threads run in this process too: subtract nothing, report as is
        return cpu / events * 1e6


async def main(args: argparse.Namespace) -> None:
    now = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory() as tmp:
        valkey = EmbeddedValkey(Path(tmp) / "valkey")
        url = valkey.start()
        try:
            domains = [f"company{i}.example" for i in range(1200)]
            csv = Path(tmp) / "companies.csv"
            write_companies(csv, domains[:600])
            host = three_plugins(csv)
            manager = RulesManager(ROOT / "rules", functions=host.functions())
            manager.load_initial()
            settings = Settings(redis_url=url)
            store = await Store.connect(url)
            configs = {"none": None, "empty": PluginHost(metrics=False), "three": host}
            services = {name: LeadService(store=store, rules=manager, settings=settings,
                                          clock=lambda: now, plugins=plugins)
                        for name, plugins in configs.items()}
            leads = make_leads(args.leads, domains)
            for service in services.values():  # warm-up
                await route_all(service, leads[:300], args.concurrency)
            # Interleaved in chunks, the order rotating, so that the machine's load swings hit
            # every configuration alike; each round's figure sums its chunks.
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in services}
            names = list(services)
            for _ in range(args.rounds):
                await store.wire.call("FLUSHDB")
                wall = dict.fromkeys(names, 0.0)
                cpu = dict.fromkeys(names, 0.0)
                for i in range(0, len(leads), args.chunk):
                    chunk = leads[i:i + args.chunk]
                    k = (i // args.chunk) % len(names)
                    for name in names[k:] + names[:k]:
                        rate, cpu_us = await route_all(services[name], chunk, args.concurrency)
                        wall[name] += len(chunk) / rate
                        cpu[name] += cpu_us * len(chunk) / 1e6
                for name in names:
                    results[name].append((len(leads) / wall[name],
                                          cpu[name] / len(leads) * 1e6))
            plain_us, hooked_us = await engine_only(manager, host, leads, now)
            per_event = await webhook_cpu(store, args.events)
            await store.close()
        finally:
            valkey.stop()
    base = max(r[0] for r in results["none"])
    print(f"LeadService.route, shipped rules, {args.leads} leads x {args.rounds} rounds, "
          f"concurrency {args.concurrency}, best round (median) per configuration:")
    print(f"{'plugins':<8} {'leads/s':>10} {'(median)':>10} {'CPU µs/lead':>12} {'vs none':>9}")
    for name, rows in results.items():
        best = max(r[0] for r in rows)
        med = statistics.median(r[0] for r in rows)
        cpu = min(r[1] for r in rows)
        print(f"{name:<8} {best:>10,.0f} {med:>10,.0f} {cpu:>12.1f} "
              f"{(best / base - 1) * 100:>+8.1f}%")
    print(f"engine only: evaluate() {plain_us:.1f} µs/lead; enrich + score + evaluate with the "
          f"three plugins {hooked_us:.1f} µs/lead (+{hooked_us - plain_us:.1f} µs)")
    print(f"webhook delivery: {per_event:.0f} µs of CPU per event (outbox read, on_event, "
          f"signed POST to a loopback receiver in this process, ack)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
