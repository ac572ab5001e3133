"""Engine cost in CPU instructions per lead (valgrind's callgrind): a figure the VM's noise
does not move, for A/B decisions too small for wall-clock timing to resolve.

    uv run python loadtests/engine_instructions.py [--leads 2000] [--seeds 0,1,2]

Needs Debian's ``valgrind``. Runs the shipped ruleset over the benchmark's synthetic leads
(loadtests/bench_engine.py) under callgrind twice — after the same warm-up, once evaluating
``--leads`` leads and once none — and prints the difference per lead. Hash seeds change the
layout of dicts and sets by about ±1%, so it repeats that per ``PYTHONHASHSEED`` and reports
each and the mean; differences under ~2% between two versions are noise.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import datetime, gc, sys
sys.path.insert(0, {root!r}); sys.path.insert(0, {root!r} + "/loadtests")
from bench_engine import synthetic_leads
from router.engine.evaluate import evaluate
from router.engine.loader import load_directory
rules = load_directory({root!r} + "/rules")
leads = synthetic_leads(1000 + {total})
now = datetime.datetime(2026, 11, 24, 15, tzinfo=datetime.UTC)
for lead, snap in leads[:1000]:
    evaluate(rules, lead, snap, now=now)
gc.collect(); gc.freeze()
for lead, snap in leads[1000:1000 + {n}]:
    evaluate(rules, lead, snap, now=now)
"""


def instructions(n: int, total: int, seed: int) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         "-c", CHILD.format(root=str(ROOT), n=n, total=total)],
        capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": str(seed)}).stderr
    return int(re.search(r"Collected : (\d+)", out).group(1))  # type: ignore[union-attr]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--leads", type=int, default=2000)
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind not found: apt-get install valgrind")
    per_lead = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for seed in (int(s) for s in args.seeds.split(",")):
            # the same leads are built in both runs; only the evaluations differ
            base, full = pool.map(lambda n, s=seed: instructions(n, args.leads, s),
                                  (0, args.leads))
            per_lead.append((full - base) / args.leads)
            print(f"PYTHONHASHSEED={seed}: {per_lead[-1]:,.0f} instructions per lead")
    print(f"mean: {sum(per_lead) / len(per_lead):,.0f} instructions per lead "
          f"({args.leads:,} leads, shipped ruleset)")


if __name__ == "__main__":
    main()
