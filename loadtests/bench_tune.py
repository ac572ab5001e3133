"""``rules tune`` benchmark: the time of one tune over a window of many decided leads.

    uv run python loadtests/bench_tune.py [--leads 100000] [--templates 2000] [--bootstrap 100]

(``loadtests/bench_outcomes.py`` runs it too, after its own figures: ``--tune-leads``.)

1. starts an embedded valkey-server (pinned to CPU 1) and routes ``--templates`` varied
   synthetic leads through the real LeadService with the shipped rules
   (loadtests/bench_replay.py's ``route``), so each has its stored decision, input and pick
   facts;
2. generates ``--leads`` leads directly in Valkey: each a copy of a template's lead hash
   (``DUMP``/``RESTORE``, pipelined) under a new id, added to the arrival index, and given an
   outcome (``stg:opportunity``) drawn from a planted truth over its scoring rules (4% x4 for
   ``bant.timeline.immediate``, x2.5 ``fit.country.core``, x2.5 ``bant.authority.executive``);
3. on CPU 0, times ``rules tune``'s phases over all of them — the paged read of decisions and
   outcomes (router/services/outcome_reader.py), the fit with its bootstrap
   (router/services/tune.py), then one whole ``run_tune`` (read, fit, candidate written, the
   window replayed against it for the status transitions) — and prints the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "loadtests"))

from bench_replay import _pin, route  # noqa: E402

from router.services.outcome_reader import OutcomeReader, funnel_of, scoring_rules  # noqa: E402
from router.services.rules import RulesManager  # noqa: E402
from router.services.tune import propose, require_analytics  # noqa: E402
from router.services.tune_run import run_tune  # noqa: E402
from router.state.embedded import EmbeddedValkey  # noqa: E402
from router.state.store import Store  # noqa: E402

PLANTED = {"bant.timeline.immediate": 4.0, "fit.country.core": 2.5,
           "bant.authority.executive": 2.5}
BASE = 0.04
T0_MS = int(dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC).timestamp() * 1000)


async def clone(store: Store, n: int, *, seed: int = 1, batch: int = 500) -> int:
    """``n`` leads copied from the routed templates, with planted outcomes; conversions."""
    wire, keys = store.wire, store.keys
    flat = await wire.call("ZRANGE", keys.arrivals, 0, -1)
    templates = [t.decode() for t in flat]
    dumps = await wire.batch([("DUMP", keys.lead(t)) for t in templates])
    decisions = await wire.batch([("HGET", keys.lead(t), "decision") for t in templates])
    rules = [{c["rule"] for c in json.loads(d)["score"]["contributions"]} for d in decisions]
    await wire.batch([("DEL", keys.lead(t)) for t in templates] + [("DEL", keys.arrivals)])
    rng = random.Random(seed)
    converted = 0
    for start in range(0, n, batch):
        calls: list[tuple[object, ...]] = []
        index: list[object] = []
        for i in range(start, min(n, start + batch)):
            k = i % len(templates)
            ms = T0_MS + i * 1000
            lead_id = f"ld_{ms:012x}{i:016x}"
            calls.append(("RESTORE", keys.lead(lead_id), 0, dumps[k]))
            p = BASE
            for rule, times in PLANTED.items():
                if rule in rules[k]:
                    p *= times
            if rng.random() < p:
                converted += 1
                calls.append(("HSET", keys.lead(lead_id), "stg:opportunity", ms + 86_400_000))
            index += [ms, lead_id]
        calls.append(("ZADD", keys.arrivals, *index))
        for reply in await wire.batch(calls):  # type: ignore[arg-type]
            if isinstance(reply, Exception):
                raise reply
    return converted


async def tune_bench(leads: int, *, templates: int = 2000, bootstrap: int = 100) -> None:
    """The whole benchmark (also run by loadtests/bench_outcomes.py ``--tune-leads``)."""
    print(f"rules tune over {leads:,} leads (bench_outcomes.py: --tune-leads 0 skips it)",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules"
        shutil.copytree(ROOT / "rules", rules)
        valkey = EmbeddedValkey(Path(tmp) / "valkey")
        url = valkey.start()
        _pin(valkey.pid, 1)
        _pin(0, 0)
        try:
            manager = RulesManager(rules, require_tests=False)
            manager.load_initial()
            ruleset = manager.current
            store = await Store.connect(url, retention=dt.timedelta(days=400))
            t = time.perf_counter()
            await route(store, manager, templates, events=True)
            converted = await clone(store, leads)
            print(f"{leads:,} leads ({templates:,} routed templates, copied in "
                  f"Valkey), {converted:,} converted; set up in {time.perf_counter() - t:.0f} s")
            require_analytics()  # scikit-learn imported before the clock starts
            t = time.perf_counter()
            reader = OutcomeReader(store, funnel=funnel_of(ruleset))
            rows = [f async for page in reader.pages() for f in page]
            read = time.perf_counter() - t
            t = time.perf_counter()
            result = propose(rows, scoring_rules(ruleset), target="opportunity",
                             bootstrap=bootstrap)
            fit = time.perf_counter() - t
            print(f"{'read (decisions + outcomes)':<30} {read:>7.1f} s  "
                  f"{len(rows) / read:>9,.0f} leads/s")
            print(f"{'fit + bootstrap (' + str(result.bootstrap) + ')':<30} {fit:>7.1f} s  "
                  f"AUC {result.auc_current:.3f} -> {result.auc_proposed:.3f}")
            t = time.perf_counter()
            report = await run_tune(store, ruleset, rules, Path(tmp) / "proposed", target=None,
                                    since=None, until=None, bootstrap=bootstrap)
            total = time.perf_counter() - t
            print(f"{'rules tune end to end':<30} {total:>7.1f} s  (read + fit + replay of "
                  f"{report.replayed:,} leads; {len(report.result.changed)} rules changed)")
            await store.close()
        finally:
            valkey.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--templates", type=int, default=2000)
    parser.add_argument("--bootstrap", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(tune_bench(args.leads, templates=args.templates, bootstrap=args.bootstrap))
