"""This checkout against another revision, side by side: leads/s and CPU per lead.

    uv run python loadtests/revision_ab.py REV [--duration 8] [--rounds 6] [--connections 32]

Needs Debian's ``wrk``. For a before/after of a change that moves code (a refactor must not
cost throughput): ``REV`` (a commit, tag or branch) is checked out into a git worktree under
``loadtests/.bench/``, and two real services run at once, one from each tree (one uvicorn
worker each on CPU 0, the same virtualenv, the same embedded Valkey on CPU 1, each in its own
database). Each round runs wrk against both in alternating order (this VM's speed drifts by
+-20% over minutes; the two halves of a round see the same machine) and prints leads/s and the
server's CPU per lead; at the end the ratio this/REV per round and its median. The ``router``
package and the shipped ``rules/`` come from REV's tree; the SDK, the plugins and the
dependencies are this checkout's.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "loadtests"))

from bench_service import (  # noqa: E402
    APP,
    BENCH,
    cpu_seconds,
    pinned_valkey,
    service_env,
    services,
    write_bodies,
    wrk,
)


def worktree(rev: str) -> tuple[Path, str]:
    """REV checked out (detached) under loadtests/.bench/, and its uvicorn app factory."""
    sha = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=ROOT,
                         capture_output=True, text=True, check=False).stdout.strip()
    if not sha:
        sys.exit(f"{rev!r} is not a commit here: give a commit, tag or branch (git log)")
    tree = BENCH / f"rev-{sha[:12]}"
    if not tree.exists():
        BENCH.mkdir(exist_ok=True)
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), sha], cwd=ROOT,
                       check=True, capture_output=True)
    # The service's factory moved with the layout of router/ (router/app.py, then
    # router/app/application.py).
    app = APP if (tree / "router" / "app" / "application.py").exists() \
        else "router.app:app_from_env"
    return tree, app


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("rev", help="the revision to compare with, e.g. HEAD~3 or a commit")
    ap.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--connections", type=int, default=32, help="wrk concurrency")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    tree, app = worktree(args.rev)
    names = ("this", args.rev)
    write_bodies(5000)
    with pinned_valkey("lr-revision-ab-") as (url, _):
        base = url.rsplit("=", 1)[0] + "=" if "?db=" in url else url.rsplit("/", 1)[0] + "/"
        envs = {name: service_env(f"{base}{db}") for db, name in enumerate(names, start=1)}
        # Each side serves its own tree's shipped rules: a revision from before a rule-file
        # feature refuses the newer files (and that is no comparison of the same service).
        envs[args.rev]["LEADROUTER_RULES_DIR"] = str(tree / "rules")
        trees = {"this": (ROOT, APP), args.rev: (tree, app)}
        with services(envs, warm_connections=args.connections, trees=trees) as servers:
            print(f"this checkout vs {args.rev} ({tree.name}); wrk -c{args.connections}, "
                  f"{args.duration}s per run", flush=True)
            ratios, cpu_ratios = [], []
            for rnd in range(args.rounds):
                order = names if rnd % 2 == 0 else names[::-1]
                rps: dict[str, float] = {}
                per_lead: dict[str, float] = {}
                for name in order:
                    proc, target = servers[name]
                    cpu = cpu_seconds(proc.pid)
                    r = wrk(target, args.duration, args.connections)
                    if r["non2xx"]:
                        # an error answer is cheap: counting it would flatter the broken side
                        sys.exit(f"{name}: {r['non2xx']:.0f} non-2xx answers under wrk; "
                                 "fix the service (run it and post a lead) before comparing")
                    rps[name] = r["rps"]
                    per_lead[name] = (cpu_seconds(proc.pid) - cpu) / max(
                        r["rps"] * args.duration, 1)
                    print(f"round {rnd + 1} {name:>12s}  {r['rps']:7,.0f} leads/s  "
                          f"CPU {per_lead[name] * 1e6:4.0f} us/lead", flush=True)
                ratios.append(rps["this"] / max(rps[args.rev], 1))
                cpu_ratios.append(per_lead["this"] / max(per_lead[args.rev], 1e-9))
            print("leads/s this/REV per round: " + ", ".join(f"{r:.2f}" for r in ratios)
                  + f" (median {statistics.median(ratios):.2f})")
            print("CPU per lead this/REV per round: "
                  + ", ".join(f"{r:.2f}" for r in cpu_ratios)
                  + f" (median {statistics.median(cpu_ratios):.2f})")


if __name__ == "__main__":
    main()
