"""The ``leadrouter`` command: serve, rules check|test|explain, plugins list.

Rule commands import only the engine, so ``leadrouter rules check`` stays fast enough for a
pre-commit hook; the web stack is imported by ``serve`` alone.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["main", "run"]

DEFAULT_RULES = "rules"


def _print_json(data: Any) -> None:
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(data), indent=2).decode() + "\n")


def _load(directory: str) -> Any:
    from router.engine.loader import load_directory
    from router.intake.config import compile_intake

    return load_directory(directory, functions=_plugin_host().functions(),
                          intake=compile_intake)


def _plugin_host() -> Any:
    """The plugins the service would load (LEADROUTER_PLUGINS* from the environment): rule
    files may call the expression functions they register."""
    from router.plugins.host import PluginHost
    from router.settings import Settings

    return PluginHost.from_settings(Settings.from_env(), metrics=False)


def cmd_plugins_list(args: argparse.Namespace) -> int:
    from router.plugins.host import PluginError

    try:
        host = _plugin_host()
        host.functions()
    except PluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    infos = host.plugins()
    if args.format == "json":
        _print_json({"plugins": infos})
        return 0
    if not infos:
        print("no plugins found (entry point group `leadrouter`, LEADROUTER_PLUGINS)")
        return 0
    for info in infos:
        print(f"{info.name} {info.version or '-'}  [{info.status}]  ({info.source}: "
              f"{info.target})")
        if info.hooks:
            print(f"    hooks: {', '.join(info.hooks)}")
        if info.functions:
            print(f"    functions: {', '.join(f + '()' for f in info.functions)}")
        for line in (info.error, *info.problems):
            if line:
                print(f"    {line}")
    return 1 if any(i.status == "failed" for i in infos) else 0


def cmd_rules_check(args: argparse.Namespace) -> int:
    from router.engine.cases import load_cases
    from router.engine.errors import RulesetError

    try:
        ruleset = _load(args.directory)
        cases = load_cases(args.directory)
    except RulesetError as exc:
        if args.format == "json":
            _print_json({"ok": False, "errors": [
                {**msgspec.structs.asdict(e), "text": str(e)} for e in exc.errors]})
        else:
            print(exc.summary())
        return 1
    code, gate = _gate(args, ruleset)
    if code == 2 or isinstance(gate, str):  # bad --max-change, or Redis: one line, no report
        print(f"leadrouter: {gate}", file=sys.stderr)
        return code
    if args.format == "json":
        _print_json({"ok": code == 0, "version": ruleset.version, "rules": len(ruleset.rules),
                     "files": list(ruleset.files), "cases": len(cases), "errors": [],
                     **({"max_change": gate} if gate is not None else {})})
    else:
        print(f"ok: {len(ruleset.rules)} rules, {len(ruleset.pools)} pools, "
              f"{len(ruleset.reps)} reps in {len(ruleset.files)} files; {len(cases)} test "
              f"cases found (run them: leadrouter rules test); version "
              f"{ruleset.version[:12]}")
        if gate is not None:
            print(f"max-change: {gate.replayed} leads of the last {gate.since} replayed; " + (
                "within the limits" if gate.ok else "refused: " + gate.message(args.directory)))
    return code


def _gate(args: argparse.Namespace, ruleset: Any) -> tuple[int, Any]:
    """``--max-change``: the reload gate's verdict on ``ruleset`` (router/app/cli_replay.py)."""
    if not getattr(args, "max_change", None):
        return 0, None
    from router.app.cli_replay import check_max_change

    return check_max_change(args, ruleset)


def cmd_rules_test(args: argparse.Namespace) -> int:
    from router.engine.cases import load_cases, run_cases
    from router.engine.errors import RulesetError

    try:
        ruleset = _load(args.directory)
        cases = load_cases(args.directory)
    except RulesetError as exc:
        print(exc.summary())
        return 1
    results = run_cases(ruleset, cases, keyword=args.k)
    failed = [r for r in results if not r.ok]
    if args.format == "json":
        _print_json({"passed": len(results) - len(failed), "failed": len(failed), "failures": [
            {"name": r.case.name, "file": r.case.file, "line": r.case.line,
             "failures": r.failures} for r in failed]})
    else:
        for r in results:
            mark = "PASS" if r.ok else "FAIL"
            if args.verbose or not r.ok:
                print(f"{mark} {r.case.file}:{r.case.line}: {r.case.name}")
            for failure in r.failures:
                print(f"     {failure}")
        print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if not results and cases:
        print(f"no case matches -k {args.k!r}", file=sys.stderr)
    return 1 if failed or not results else 0


def cmd_rules_explain(args: argparse.Namespace) -> int:
    """The decision of one lead, through the service's own ``decide()`` (router/services/
    decide.py) with the plugins ``serve`` would load: what routing would answer, unwritten."""
    import asyncio

    from leadrouter_sdk import lead_from_mapping

    from router.engine.backend import compiled_evaluator
    from router.engine.cases import CaseState
    from router.engine.errors import RulesetError
    from router.engine.loader import load_directory
    from router.intake.config import compile_intake
    from router.services.decide import dry_run

    host = _plugin_host()
    try:
        # intake.yaml too: a mistake there is reported here as by `rules check`
        ruleset = load_directory(args.directory, functions=host.functions(),
                                 intake=compile_intake)
    except RulesetError as exc:
        print(exc.summary())
        return 1
    try:
        raw = Path(args.lead).read_bytes() if args.lead != "-" else sys.stdin.buffer.read()
        lead = lead_from_mapping(msgspec.json.decode(raw))
        state = msgspec.json.decode(Path(args.state).read_bytes(), type=CaseState) \
            if args.state else CaseState()
    except (OSError, msgspec.DecodeError, msgspec.ValidationError, TypeError) as exc:
        print(f"error: cannot read the lead: {exc} — pass a JSON object of lead fields",
              file=sys.stderr)
        return 2
    now = args.now or datetime.datetime.now(datetime.UTC)
    plan = asyncio.run(dry_run(lead, state, now, ruleset,
                               evaluator=compiled_evaluator(ruleset), plugins=host))
    ev = plan.evaluation
    if args.format == "json":
        _print_json({"evaluation": ev, "explanation": plan.explanation})
        return 0
    sc = ev.score
    print(f"rules version {ruleset.version[:12]}  evaluated at {now.isoformat()}")
    print(f"score {sc.total:g} (fit {sc.fit:g}, bant {sc.bant:g}, engagement "
          f"{sc.engagement:g})  grade {sc.grade}  status {ev.status}")
    for c in sc.contributions:
        print(f"  {c.points:+g}  {c.rule}  [{c.group}]")
    for step in plan.explanation:
        rule = f" ← {step.rule}" if step.rule else ""
        print(f"{step.stage:>13}: {step.outcome}{rule}  ({step.detail})")
    print(f"   assignment: {ev.route.reason}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from router.app.serve import serve

    return serve(args)


def _iso(text: str) -> datetime.datetime:
    value = datetime.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)


DESCRIPTION = """\
Lead scoring and routing service.

  leadrouter serve                 run the HTTP service
  leadrouter rules check [DIR]     load a rules directory and report every error
  leadrouter rules test [DIR]      run the test cases in DIR/tests/*.yaml
  leadrouter rules explain LEAD    show the decision for one lead (nothing is written)
  leadrouter rules replay [DIR]    replay stored leads through DIR's rules: what would change
  leadrouter rules calibrate [DIR] conversion by grade, score band and rule (outcomes)
  leadrouter rules tune [DIR]      propose scoring points from outcomes (never applied)
  leadrouter plugins list          show the plugins the service would load
  leadrouter plugins test-notify PLUGIN --rep REP   send a sample through a channel

Rule commands take the rules directory as an argument or as --rules DIR (default: rules).
Settings come from LEADROUTER_* environment variables (docs/operations.md); rule files are
described in docs/rules.md.
"""


def _serve_flag(parser: argparse.ArgumentParser, flag: str, field: str, text: str,
                kind: type = str, metavar: str | None = None,
                unset: str = "an embedded valkey-server in the data dir") -> None:
    """A ``serve`` flag that overrides the setting ``field``: its help names the environment
    variable and the default, both read from :class:`~router.settings.Settings` (``unset``
    says what a default of None means)."""
    from router.settings import ENV_PREFIX, Settings

    default = next(f.default for f in msgspec.structs.fields(Settings) if f.name == field)
    shown = unset if default is None else default
    parser.add_argument(flag, dest=field, type=kind, metavar=metavar or field.upper(),
                        help=f"{text} (default: ${ENV_PREFIX}{field.upper()}, else {shown})")


def _add_serve(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the HTTP service",
                           description="Run the HTTP service. Each flag overrides its "
                           "LEADROUTER_* environment variable; every other setting is read "
                           "from the environment (docs/operations.md).")
    _serve_flag(serve, "--host", "host", "address to listen on")
    _serve_flag(serve, "--port", "port", "TCP port to listen on", int)
    _serve_flag(serve, "--workers", "workers", "worker processes", int)
    _serve_flag(serve, "--rules", "rules_dir", "the rules directory", metavar="DIR")
    _serve_flag(serve, "--redis-url", "redis_url", "Redis/Valkey URL, e.g. redis://host:6379/0",
                metavar="URL")
    _serve_flag(serve, "--data-dir", "data_dir", "where the embedded Valkey and the metrics "
                "files live", metavar="DIR")
    _serve_flag(serve, "--embedded-port", "embedded_port", "also open this TCP port on "
                "127.0.0.1 for the embedded Valkey (0: a free one)", int, metavar="PORT",
                unset="its Unix socket only: valkey-cli -s DATA_DIR/valkey.sock")
    serve.set_defaults(func=cmd_serve)


def _rules_dir(parser: argparse.ArgumentParser) -> None:
    """The rules directory, the same way for every rule command: ``DIR`` or ``--rules DIR``."""
    parser.add_argument("directory", nargs="?", metavar="DIR",
                        help=f"the rules directory (default: {DEFAULT_RULES})")
    parser.add_argument("--rules", dest="rules_option", metavar="DIR",
                        help="the rules directory, as an option (same as DIR)")


def _add_rules(sub: Any) -> None:
    rules = sub.add_parser("rules", help="check, test and explain rule files")
    rsub = rules.add_subparsers(dest="rules_command", required=True)
    check = rsub.add_parser("check", help="load a rules directory and report every error")
    _rules_dir(check)
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.set_defaults(func=cmd_rules_check)
    from router.app.cli_replay import add_max_change, add_replay, add_shadow_report

    add_max_change(check, serve_flag=_serve_flag)
    test = rsub.add_parser("test", help="run the cases in DIR/tests/*.yaml")
    _rules_dir(test)
    test.add_argument("-k", help="only cases whose name contains this text")
    test.add_argument("-v", "--verbose", action="store_true", help="list passing cases too")
    test.add_argument("--format", choices=("text", "json"), default="text")
    test.set_defaults(func=cmd_rules_test)
    explain = rsub.add_parser("explain", help="show the engine's decision for one lead")
    explain.add_argument("lead", help="a JSON file with the lead's fields (- for stdin)")
    _rules_dir(explain)
    explain.add_argument("--state", help="JSON: {account_owner, events: [{event, days_ago}]}")
    explain.add_argument("--now", type=_iso, help="evaluation time (ISO 8601), default now")
    explain.add_argument("--format", choices=("text", "json"), default="text")
    explain.set_defaults(func=cmd_rules_explain)
    add_replay(rsub, serve_flag=_serve_flag, rules_dir=_rules_dir)
    add_shadow_report(rsub, serve_flag=_serve_flag)
    from router.app.cli_outcomes import add_calibrate, add_tune

    add_calibrate(rsub, serve_flag=_serve_flag, rules_dir=_rules_dir)
    add_tune(rsub, serve_flag=_serve_flag, rules_dir=_rules_dir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leadrouter", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(sub)
    _add_rules(sub)
    from router.app.cli_migrate import add_migrate_keys
    add_migrate_keys(sub, serve_flag=_serve_flag)
    plugins = sub.add_parser("plugins", help="show the plugins the service would load")
    psub = plugins.add_subparsers(dest="plugins_command", required=True)
    plist = psub.add_parser("list", help="each plugin's name, version, hooks and status")
    plist.add_argument("--format", choices=("text", "json"), default="text")
    plist.set_defaults(func=cmd_plugins_list)
    from router.app.cli_notify import add_test_notify

    add_test_notify(psub, _rules_dir)
    return parser


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors that are the user's to fix (a setting, a plugin): one line, no traceback."""
    from router.plugins.host import PluginError
    from router.settings import SettingsError

    return SettingsError, PluginError


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if "rules_option" in args:
        given = {d for d in (args.directory, args.rules_option) if d is not None}
        if len(given) > 1:
            parser.error(f"two rules directories: {args.directory} and --rules "
                         f"{args.rules_option} — give one")
        args.directory = given.pop() if given else DEFAULT_RULES
    try:
        result: int = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, like other command-line tools. Point
        # stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command a pipe stopped
    except _user_errors() as exc:
        print(f"leadrouter: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
