"""``leadrouter rules calibrate`` and ``leadrouter rules tune``: outcomes against the scoring,
on the service's Redis (found as ``serve`` finds it, like ``rules replay``). Nothing is written
to the service's state; ``tune`` writes a candidate rules directory for review
(docs/outcomes.md)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["add_calibrate", "add_tune", "cmd_rules_calibrate", "cmd_rules_tune"]

FLAG = Callable[..., None]


def _window(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--since", default=default, help="window start: a duration before now "
                        f"(180d, 12h) or an ISO timestamp (default: {default})")
    parser.add_argument("--until", help="window end, like --since (default: now)")
    parser.add_argument("--target", help="the stage that counts as converted (default: the "
                        "funnel's `converted`, e.g. opportunity; won for closed deals)")


def add_calibrate(rsub: Any, *, serve_flag: FLAG, rules_dir: Callable[[Any], None]) -> None:
    from router.app.cli_replay import redis_flags

    cal = rsub.add_parser(
        "calibrate", help="conversion by grade, score band and rule: does the score work?",
        description="Read the decided leads of a window and their outcomes from the service's "
        "Redis and report conversion by grade and score band (95%% Wilson intervals), the top "
        "grades' share of conversions, grade x speed-to-lead and grade x pool, and the lift "
        "of every scoring rule. Nothing is written. See docs/outcomes.md.")
    rules_dir(cal)
    redis_flags(cal, serve_flag)
    _window(cal, "90d")
    cal.add_argument("--band", type=float, default=20.0, help="score band width (default 20)")
    cal.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    cal.add_argument("--output", "-o", metavar="FILE", help="write the report here")
    cal.set_defaults(func=cmd_rules_calibrate)


def add_tune(rsub: Any, *, serve_flag: FLAG, rules_dir: Callable[[Any], None]) -> None:
    from router.app.cli_replay import redis_flags

    tune = rsub.add_parser(
        "tune", help="propose scoring points from outcomes (never applied)",
        description="Fit a regularised logistic model of conversion on the scoring rules' "
        "hits over a window's decided leads and write a candidate rules directory (DIR's "
        "files, only `points:` changed) with a report: holdout AUC and top-decile lift of "
        "current vs proposed points, the rules changed and why, the status transitions the "
        "proposal would cause. Needs scikit-learn: pip install 'leadrouter[analytics]'. "
        "See docs/outcomes.md.")
    rules_dir(tune)
    redis_flags(tune, serve_flag)
    _window(tune, "180d")
    tune.add_argument("--output", metavar="DIR", default="rules-proposed",
                      help="where the candidate rules and tune-report.md/.json go (default: "
                      "rules-proposed)")
    tune.add_argument("--bootstrap", type=int, default=100, help="bootstrap resamples for "
                      "the significance of each rule (default 100)")
    tune.add_argument("--seed", type=int, default=0, help="seed of the holdout split and the "
                      "bootstrap (default 0)")
    tune.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    tune.set_defaults(func=cmd_rules_tune)


def _fail(message: str, code: int = 1) -> int:
    print(f"leadrouter: {message}", file=sys.stderr)
    return code


def _setup(args: argparse.Namespace) -> tuple[Any, Any, Any, Any, Any] | int:
    """(settings, plugin host, ruleset, since, until), or an exit code."""
    from router.engine.errors import RulesetError
    from router.plugins.host import PluginHost
    from router.services.replay_options import OptionError, load_rules, query_of
    from router.settings import Settings

    settings = Settings.from_env(redis_url=args.redis_url, data_dir=args.data_dir)
    host = PluginHost.from_settings(settings, metrics=False)
    try:
        ruleset = load_rules(args.directory, host.functions())
        query = query_of(dt.datetime.now(dt.UTC), since=args.since, until=args.until)
    except RulesetError as exc:
        print(exc.summary())
        return 1
    except OptionError as exc:
        return _fail(str(exc), 2)
    return settings, host, ruleset, query.since, query.until


def _progress(done: int) -> None:
    print(f"\rread {done} leads", end="", file=sys.stderr, flush=True)


def _show(args: argparse.Namespace) -> bool:
    return bool(args.format != "json" and sys.stderr.isatty())


def cmd_rules_calibrate(args: argparse.Namespace) -> int:
    from router.app.cli_replay import Failed, on_store, write_report
    from router.services.calibration_render import render_calibration
    from router.services.outcome_reader import CalibrationService, TargetError

    setup = _setup(args)
    if isinstance(setup, int):
        return setup
    settings, _, ruleset, since, until = setup
    show = _show(args)

    async def work(store: Any) -> Any:
        from router.services.replay import ReplayService

        await ReplayService(store).prepare()  # leads older than the arrival index, if any
        return await CalibrationService(store).report(
            ruleset, since=since, until=until, target=args.target, band_width=args.band,
            progress=_progress if show else None)

    try:
        report = asyncio.run(on_store(settings, work))
    except (Failed, TargetError) as exc:
        return _fail(str(exc))
    if show:
        print("", file=sys.stderr)
    write_report(render_calibration(report, args.format), args.output,
                 f"{report.leads} leads")
    return 0


def cmd_rules_tune(args: argparse.Namespace) -> int:
    from router.app.cli_replay import Failed, on_store
    from router.services.outcome_reader import TargetError
    from router.services.tune import AnalyticsMissing, TooFew, require_analytics
    from router.services.tune_run import render_tune, run_tune

    try:
        require_analytics()  # before reading anything
    except AnalyticsMissing as exc:
        return _fail(str(exc))
    if args.bootstrap < 2:
        return _fail(f"--bootstrap {args.bootstrap}: give at least 2 resamples (100 is "
                     "the default)", 2)
    setup = _setup(args)
    if isinstance(setup, int):
        return setup
    settings, host, ruleset, since, until = setup
    show = _show(args)

    async def work(store: Any) -> Any:
        return await run_tune(store, ruleset, Path(args.directory), Path(args.output),
                              target=args.target, since=since, until=until, plugins=host,
                              seed=args.seed, bootstrap=args.bootstrap,
                              progress=_progress if show else None)

    try:
        report = asyncio.run(on_store(settings, work))
    except (Failed, TargetError, TooFew, ValueError) as exc:
        if show:
            print("", file=sys.stderr)
        return _fail(str(exc))
    if show:
        print("", file=sys.stderr)
    sys.stdout.write(render_tune(report, args.format).decode())
    print(f"leadrouter: candidate rules in {args.output} (report: {args.output}/"
          "tune-report.md) — nothing was applied", file=sys.stderr)
    return 0
