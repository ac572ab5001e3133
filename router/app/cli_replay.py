"""``leadrouter rules replay RULES_DIR``: the service's stored leads through candidate rules,
and the report of what would have changed (router/services/replay_report.py). Nothing is
written to the service's state.

Redis is found as ``serve`` finds it: ``--redis-url`` / ``--data-dir`` override
LEADROUTER_REDIS_URL / LEADROUTER_DATA_DIR; without a URL, the data dir's embedded Valkey (the
running one is reused; a stopped one is started on its files for the replay, then stopped).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["Failed", "add_max_change", "add_replay", "add_shadow_report", "check_max_change",
           "cmd_rules_replay", "cmd_rules_shadow_report", "on_store", "redis_flags",
           "write_report"]

FLAG = Callable[..., None]


def add_replay(rsub: Any, *, serve_flag: FLAG, rules_dir: Callable[[Any], None]) -> None:
    replay = rsub.add_parser(
        "replay", help="replay stored leads through candidate rules and report the changes",
        description="Replay the service's stored leads through the rules in DIR and report "
        "what would have changed (statuses, pools, owners, rule hits, SLA load). Nothing is "
        "written. See docs/rules.md, 'Before you publish a change'.")
    rules_dir(replay)
    redis_flags(replay, serve_flag)
    replay.add_argument("--since", help="window start: a duration before now (7d, 12h, 30m) "
                        "or an ISO timestamp (default: the oldest lead kept)")
    replay.add_argument("--until", help="window end, like --since (default: now)")
    _report_flags(replay, "stored")
    replay.add_argument("--rules-version", action="append", default=[], metavar="VERSION=DIR",
                        help="replay the leads that VERSION decided against DIR (repeatable); "
                        "with it, each lead is replayed against its own version's rules and "
                        "leads of versions not given are skipped — the check that a replay "
                        "reproduces what was decided")
    replay.set_defaults(func=cmd_rules_replay)


def redis_flags(parser: argparse.ArgumentParser, serve_flag: FLAG) -> None:
    """Where the service's state is, found as ``serve`` finds it."""
    serve_flag(parser, "--redis-url", "redis_url", "the service's Redis/Valkey URL",
               metavar="URL")
    serve_flag(parser, "--data-dir", "data_dir", "the service's data dir (its embedded "
               "Valkey)", metavar="DIR")


def _report_flags(parser: argparse.ArgumentParser, decision: str) -> None:
    """Which leads and which report: filters on the ``decision`` ("stored", "live") side."""
    parser.add_argument("--limit", type=int, help="replay at most this many leads")
    parser.add_argument("--status", help=f"only leads whose {decision} status is this")
    parser.add_argument("--pool", help=f"only leads the {decision} decision sent to this pool")
    parser.add_argument("--territory", help=f"only leads in this {decision} territory")
    parser.add_argument("--format", choices=("text", "json", "markdown", "html"),
                        default="text")
    parser.add_argument("--output", "-o", metavar="FILE", help="write the report here "
                        "(default: standard output)")


def _fail(message: str, code: int = 1) -> int:
    print(f"leadrouter: {message}", file=sys.stderr)
    return code


def cmd_rules_replay(args: argparse.Namespace) -> int:
    from router.engine.errors import RulesetError
    from router.plugins.host import PluginHost
    from router.services.replay_options import (
        OptionError,
        load_rules,
        query_of,
        version_rules,
    )
    from router.settings import Settings

    settings = Settings.from_env(redis_url=args.redis_url, data_dir=args.data_dir)
    host = PluginHost.from_settings(settings, metrics=False)
    functions = host.functions()
    try:
        candidate = load_rules(args.directory, functions)
        pairs = {}
        for item in args.rules_version:
            version, sep, directory = item.partition("=")
            if not sep or not version or not directory:
                return _fail(f"--rules-version {item!r}: write VERSION=DIR", 2)
            pairs[version] = load_rules(directory, functions)
        versions = version_rules(pairs)
        query = query_of(dt.datetime.now(dt.UTC), since=args.since, until=args.until,
                         limit=args.limit, status=args.status, pool=args.pool,
                         territory=args.territory)
    except RulesetError as exc:  # the same lines as `rules check`, and nothing replayed
        print(exc.summary())
        return 1
    except OptionError as exc:
        return _fail(str(exc), 2)
    base = _base_rules(settings.rules_dir, functions)
    rulesets: Any = {**versions, candidate.version: candidate} if versions else candidate
    show = args.format != "json" and sys.stderr.isatty()
    job = _Job(settings=settings, rulesets=rulesets, candidate=candidate, base=base,
               query=query, plugins=host, progress=show)
    return asyncio.run(_replay(args, job))


def _base_rules(directory: str, functions: Any) -> Any:
    """The rules the service serves (LEADROUTER_RULES_DIR): the pools' weights before."""
    from router.engine.errors import RulesetError
    from router.engine.loader import load_directory

    try:
        return load_directory(directory, functions=functions)
    except RulesetError:
        return None


def _redis_url(settings: Any) -> tuple[str, Any]:
    """The URL, and the embedded server to stop afterwards (None when not ours)."""
    if settings.redis_url:
        return settings.redis_url, None
    from router.state.embedded import EmbeddedValkey

    if not Path(settings.data_dir).is_dir():
        raise LookupError(f"no Redis URL and no data dir {settings.data_dir!r}: nothing to "
                          "replay — pass the service's --redis-url or --data-dir")
    embedded = EmbeddedValkey(Path(settings.data_dir))
    return embedded.start(), embedded


class _Job(NamedTuple):
    settings: Any
    rulesets: Any
    candidate: Any
    base: Any
    query: Any
    plugins: Any
    progress: bool


async def _replay(args: argparse.Namespace, job: _Job) -> int:
    from router.services.replay_render import render
    from router.services.replay_report import collect
    from router.state.embedded import EmbeddedValkeyError
    from router.state.errors import StateError
    from router.state.store import Store
    from router.state.wire import tls_options

    try:
        url, embedded = _redis_url(job.settings)
    except (LookupError, EmbeddedValkeyError) as exc:
        return _fail(str(exc))
    try:
        try:
            store = await Store.connect(url, prefix=job.settings.key_prefix,
                                        tls=tls_options(job.settings))
        except (StateError, OSError) as exc:
            return _fail(f"cannot reach Redis at {url}: {exc} — is the service's Redis "
                         "running? Pass its URL with --redis-url (or LEADROUTER_REDIS_URL)")
        try:
            service = _service(store, job.plugins)
            await service.prepare()  # older leads indexed, if the service never finished it
            report = await collect(
                service.run(job.rulesets, job.query,
                            progress=_progress if job.progress else None),
                candidate=job.candidate, base=job.base, query=job.query)
        except StateError as exc:
            return _fail(f"Redis failed during the replay: {exc} — nothing was written; "
                         "run it again once Redis answers")
        finally:
            await store.close()
    finally:
        if embedded is not None:
            embedded.stop()
    if job.progress:
        print("", file=sys.stderr)
    if not report.replayed and not report.skipped.count and args.format != "text":
        print("leadrouter: 0 leads in window", file=sys.stderr)
    write_report(render(report, args.format), args.output,
                 f"{report.replayed} leads replayed, {report.changed} changed")
    return 0


def write_report(data: bytes, output: str | None, summary: str) -> None:
    """A rendered report to ``--output`` (saying so on stderr, with ``summary``) or stdout."""
    if output:
        Path(output).write_bytes(data)
        print(f"leadrouter: report written to {output} ({summary})", file=sys.stderr)
    else:
        sys.stdout.write(data.decode())


def _progress(done: int) -> None:
    print(f"\rreplayed {done} leads", end="", file=sys.stderr, flush=True)


def _service(store: Any, plugins: Any) -> Any:
    """The replay service on ``store`` (router/services/replay.py)."""
    from router.services.replay import ReplayService

    return ReplayService(store, plugins=plugins)


# -- leadrouter rules shadow-report ------------------------------------------------------------


def add_shadow_report(rsub: Any, *, serve_flag: FLAG) -> None:
    report = rsub.add_parser(
        "shadow-report", help="where the shadow rules would have sent the shadow period's leads",
        description="The report of shadow mode (LEADROUTER_SHADOW_RULES): the leads of the "
        "shadow period replayed against the recorded shadow rules — the same report as "
        "`rules replay`. See docs/rules.md, 'Shadow mode'.")
    redis_flags(report, serve_flag)
    report.add_argument("--version", dest="shadow_version", metavar="VERSION",
                        help="an earlier shadow rules version (7+ characters; default: the "
                        "latest)")
    _report_flags(report, "live")
    report.set_defaults(func=cmd_rules_shadow_report)


def cmd_rules_shadow_report(args: argparse.Namespace) -> int:
    from router.plugins.host import PluginHost
    from router.settings import Settings

    if args.limit is not None and args.limit < 1:
        return _fail(f"--limit {args.limit}: give a positive number of leads", 2)
    settings = Settings.from_env(redis_url=args.redis_url, data_dir=args.data_dir)
    host = PluginHost.from_settings(settings, metrics=False)
    return asyncio.run(_shadow_report(args, settings, host))


async def _shadow_report(args: argparse.Namespace, settings: Any, host: Any) -> int:
    from router.engine.errors import RulesetError
    from router.services.replay_render import render
    from router.services.shadow import NoShadow, shadow_report

    functions = host.functions()
    base = _base_rules(settings.rules_dir, functions)

    async def run(store: Any) -> Any:
        return await shadow_report(store, _service(store, host), version=args.shadow_version,
                                   functions=functions, base=base, limit=args.limit,
                                   status=args.status, pool=args.pool,
                                   territory=args.territory)

    try:
        report = await on_store(settings, run)
    except NoShadow as exc:
        return _fail(str(exc))
    except RulesetError as exc:
        return _fail(f"the recorded shadow rules do not load: {exc.summary()}")
    except Failed as exc:
        return _fail(str(exc))
    write_report(render(report, args.format), args.output,
                 f"{report.replayed} leads replayed, {report.changed} changed")
    return 0


class Failed(Exception):
    """Redis could not be reached or failed; the message says what to do."""


async def on_store(settings: Any, work: Callable[[Any], Any]) -> Any:
    """``await work(store)`` on the service's Redis, found as ``serve`` finds it."""
    from router.state.embedded import EmbeddedValkeyError
    from router.state.errors import StateError
    from router.state.store import Store
    from router.state.wire import tls_options

    try:
        url, embedded = _redis_url(settings)
    except (LookupError, EmbeddedValkeyError) as exc:
        raise Failed(str(exc)) from None
    try:
        try:
            store = await Store.connect(url, prefix=settings.key_prefix,
                                        tls=tls_options(settings))
        except (StateError, OSError) as exc:
            raise Failed(f"cannot reach Redis at {url}: {exc} — is the service's Redis "
                          "running? Pass its URL with --redis-url (or LEADROUTER_REDIS_URL)"
                          ) from None
        try:
            return await work(store)
        except StateError as exc:
            raise Failed(f"Redis failed: {exc} — nothing was written; run it again once "
                          "Redis answers") from None
        finally:
            await store.close()
    finally:
        if embedded is not None:
            embedded.stop()


# -- leadrouter rules check --max-change -------------------------------------------------------


def add_max_change(check: Any, *, serve_flag: FLAG) -> None:
    check.add_argument("--max-change", metavar="FIELD:PERCENT%",
                       help="also replay the last 7 days' leads against DIR and fail when more "
                       "than this share of them change in FIELD (status:5%%, owner:10%%, "
                       "pool:5%%; several separated by commas)")
    serve_flag(check, "--redis-url", "redis_url", "with --max-change: the service's "
               "Redis/Valkey URL", metavar="URL")
    serve_flag(check, "--data-dir", "data_dir", "with --max-change: the service's data dir",
               metavar="DIR")


def check_max_change(args: argparse.Namespace, ruleset: Any) -> tuple[int, Any]:
    """``rules check --max-change``: (exit code, the gate's result or an error line)."""
    from router.plugins.host import PluginHost
    from router.services.change_gate import check_change, parse_max_change
    from router.settings import Settings

    try:
        limits = parse_max_change(args.max_change)
    except ValueError as exc:
        return 2, str(exc)
    settings = Settings.from_env(redis_url=args.redis_url, data_dir=args.data_dir)
    host = PluginHost.from_settings(settings, metrics=False)
    base = _base_rules(settings.rules_dir, host.functions())

    async def run(store: Any) -> Any:
        return await check_change(_service(store, host), ruleset, limits,
                                  now=dt.datetime.now(dt.UTC), base=base)

    try:
        gate = asyncio.run(on_store(settings, run))
    except Failed as exc:
        return 1, str(exc)
    return (0 if gate.ok else 1), gate
