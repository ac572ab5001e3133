"""Compiled engine vs durable-rules backend: leads/s and memory on the shipped ruleset.

    uv run python loadtests/bench_durable.py [--rules rules] [--leads 100000]

(the durable-rules engine is the `leadrouter-durable` package, backends/durable/, which `uv sync`
installs with the dev group; Python < 3.13).

Both engines evaluate the same seeded stream of varied leads (cycled from --distinct leads with
their engagement snapshots) in the same process, one after the other: leads/s, µs/lead, the
resident memory (RSS) before and after the --leads evaluations of each engine, and the Python
heap growth measured with tracemalloc over a second pass of --traced leads (tracemalloc does not
see durable-rules' C allocations; RSS does). Before timing, every distinct lead is checked to
give the same Evaluation on both engines.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import random
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from leadrouter_durable import DurableEngine, durable_unavailable
from leadrouter_sdk import Lead

from router.engine.evaluate import Evaluation, Snapshot, evaluate
from router.engine.loader import load_directory
from router.engine.ruleset import Ruleset

NOW = datetime.datetime(2026, 11, 24, 15, tzinfo=datetime.UTC)
TITLES = ["VP of Sales", "Chief Revenue Officer", "Head of Marketing Ops", "Director of IT",
          "Senior Software Engineer", "Marketing Manager", "Student", "CEO", "Founder",
          "Procurement Specialist", "Sales Development Rep", "Data Analyst", "CTO",
          "Operations Manager", "Consultant", "Intern", "Head of Growth", "IT Manager", None]
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "mailinator.com", "acme.example",
           "globex.example", "initech.example", "umbrella.example", "hooli.example",
           "stark.example", "wayne.example", "cyberdyne.example", "example.edu"]
PLACES = [("US", ["CA", "WA", "OR", "TX", "IL", "NY", "MA", "FL"]), ("CA", ["ON", "QC", "BC"]),
          ("GB", [None]), ("DE", ["BY", "BE"]), ("FR", [None]), ("AU", ["NSW"]), ("SG", [None]),
          ("BR", ["SP"]), ("MX", [None]), ("IN", [None]), ("JP", [None]), (None, [None])]
INDUSTRIES = ["Software", "SaaS", "Financial Services", "Healthcare", "Retail", "Logistics",
              "Manufacturing", "Education", "Government", None]
EVENTS = ["demo_requested", "pricing_page_viewed", "webinar_attended", "content_downloaded",
          "email_clicked", "page_viewed", "trial_started", "contact_sales"]


def stream(n: int, ruleset: Ruleset, seed: int = 7) -> list[tuple[Lead, Snapshot]]:
    rng = random.Random(seed)
    windows = sorted(ruleset.windows)
    out = []
    for i in range(n):
        country, states = rng.choice(PLACES)
        lead = Lead(
            email=f"person{i}@{rng.choice(DOMAINS)}",
            first_name=rng.choice(["Ana", "Bo", "Chen", "Dee", "test"]),
            title=rng.choice(TITLES),
            company=rng.choice(["Acme", "Globex", None, "Initech"]),
            employees=int(rng.lognormvariate(5, 1.8)) if rng.random() < 0.8 else None,
            annual_revenue=float(rng.randint(1, 500)) * 1e6 if rng.random() < 0.5 else None,
            industry=rng.choice(INDUSTRIES), country=country, state=rng.choice(states),
            budget=float(rng.choice([0, 5000, 20000, 50000, 100000, 250000]))
            if rng.random() < 0.6 else None,
            authority=rng.choice(["decision_maker", "influencer", "user", None]),
            need=rng.choice([None, "Replace our spreadsheet routing", "RFP for lead routing"]),
            timeline_days=rng.choice([7, 30, 90, 180, 365, None]),
            phone=rng.choice([None, "+14155550100"]),
            attributes={"plan": rng.choice(["free", "trial", "pro"])},
        )
        counts = {w: rng.randint(0, 3) for w in windows if rng.random() < 0.3}
        last = {e: NOW - datetime.timedelta(days=rng.uniform(0, 60)) for e in EVENTS
                if rng.random() < 0.3}
        owner = rng.choice(["alice", "harriet"]) if rng.random() < 0.05 else None
        out.append((lead, Snapshot(account_owner=owner, counts=counts, last=last)))
    return out


def rss_kib() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") // 1024
    except OSError:  # not Linux: peak RSS is the best there is
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


Evaluate = Callable[[Lead, Snapshot], Evaluation]


def run(name: str, fn: Evaluate, leads: list[tuple[Lead, Snapshot]], total: int,
        traced: int) -> dict[str, float]:
    for lead, snap in leads[:2000]:  # warm up: memo tables, allocator pools
        fn(lead, snap)
    gc.collect()
    rss_before = rss_kib()
    n = len(leads)
    start = time.perf_counter()
    for i in range(total):
        lead, snap = leads[i % n]
        fn(lead, snap)
    elapsed = time.perf_counter() - start
    gc.collect()
    rss_after = rss_kib()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(traced):
        lead, snap = leads[i % n]
        fn(lead, snap)
    gc.collect()
    grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    return {"leads_per_s": total / elapsed, "us_per_lead": elapsed / total * 1e6,
            "rss_before_mib": rss_before / 1024, "rss_after_mib": rss_after / 1024,
            "rss_growth_kib": rss_after - rss_before, "heap_growth_kib": grown / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", default=str(Path(__file__).resolve().parents[1] / "rules"))
    parser.add_argument("--leads", type=int, default=100_000, help="evaluations per engine")
    parser.add_argument("--distinct", type=int, default=5000, help="distinct leads, cycled")
    parser.add_argument("--traced", type=int, default=20_000,
                        help="evaluations per engine with tracemalloc on")
    args = parser.parse_args()
    reason = durable_unavailable()
    if reason:
        sys.exit(f"bench_durable: {reason}")

    ruleset = load_directory(args.rules)
    rules = sum(len(s.rules) for s in ruleset.stages)
    leads = stream(args.distinct, ruleset)
    engine = DurableEngine(ruleset)
    disagree = sum(1 for lead, snap in leads
                   if evaluate(ruleset, lead, snap, now=NOW)
                   != engine.evaluate(lead, snap, now=NOW))

    def compiled(lead: Lead, snap: Snapshot) -> Evaluation:
        return evaluate(ruleset, lead, snap, now=NOW)

    def durable(lead: Lead, snap: Snapshot) -> Evaluation:
        return engine.evaluate(lead, snap, now=NOW)

    results = {"compiled": run("compiled", compiled, leads, args.leads, args.traced),
               "durable": run("durable", durable, leads, args.leads, args.traced)}

    print(f"ruleset {args.rules}: {rules} rules, version {ruleset.version[:12]}; "
          f"{args.distinct} distinct leads, {args.leads:,} evaluations per engine")
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} cpus; engines disagree on {disagree} of {len(leads)} leads")
    print(f"{'engine':<10}{'leads/s':>12}{'µs/lead':>10}{'RSS before':>12}{'RSS after':>11}"
          f"{'RSS growth':>12}{'heap growth':>13}")
    for name, r in results.items():
        print(f"{name:<10}{r['leads_per_s']:>12,.0f}{r['us_per_lead']:>10.1f}"
              f"{r['rss_before_mib']:>10.1f}Mi{r['rss_after_mib']:>9.1f}Mi"
              f"{r['rss_growth_kib']:>10,}Ki{r['heap_growth_kib']:>11.1f}Ki")
    ratio = results["compiled"]["leads_per_s"] / results["durable"]["leads_per_s"]
    print(f"ratio: the compiled engine is {ratio:.1f}x faster than durable-rules "
          f"(facts held by durable-rules after the run: {engine.facts_held()})")


if __name__ == "__main__":
    main()
