"""The ``leadrouter`` command: serve, rules check|test|explain, plugins list.

Rule commands import only the engine, so ``leadrouter rules check`` stays fast enough for a
pre-commit hook; the web stack is imported by ``serve`` alone.
"""

from __future__ import annotations

import argparse
import datetime
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
    if args.format == "json":
        _print_json({"ok": True, "version": ruleset.version, "rules": len(ruleset.rules),
                     "files": list(ruleset.files), "cases": len(cases), "errors": []})
    else:
        print(f"ok: {len(ruleset.rules)} rules, {len(ruleset.pools)} pools, "
              f"{len(ruleset.reps)} reps in {len(ruleset.files)} files; {len(cases)} test "
              f"cases; version {ruleset.version[:12]}")
    return 0


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
        ruleset = load_directory(args.rules, functions=host.functions(), intake=compile_intake)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leadrouter", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument("--rules", dest="rules_dir")
    serve.add_argument("--redis-url")
    serve.add_argument("--data-dir")
    serve.set_defaults(func=cmd_serve)

    rules = sub.add_parser("rules", help="check, test and explain rule files")
    rsub = rules.add_subparsers(dest="rules_command", required=True)
    check = rsub.add_parser("check", help="load a rules directory and report every error")
    check.add_argument("directory", nargs="?", default=DEFAULT_RULES)
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.set_defaults(func=cmd_rules_check)
    test = rsub.add_parser("test", help="run the cases in DIR/tests/*.yaml")
    test.add_argument("directory", nargs="?", default=DEFAULT_RULES)
    test.add_argument("-k", help="only cases whose name contains this text")
    test.add_argument("-v", "--verbose", action="store_true", help="list passing cases too")
    test.add_argument("--format", choices=("text", "json"), default="text")
    test.set_defaults(func=cmd_rules_test)
    explain = rsub.add_parser("explain", help="show the engine's decision for one lead")
    explain.add_argument("lead", help="a JSON file with the lead's fields (- for stdin)")
    explain.add_argument("--rules", default=DEFAULT_RULES)
    explain.add_argument("--state", help="JSON: {account_owner, events: [{event, days_ago}]}")
    explain.add_argument("--now", type=_iso, help="evaluation time (ISO 8601), default now")
    explain.add_argument("--format", choices=("text", "json"), default="text")
    explain.set_defaults(func=cmd_rules_explain)

    plugins = sub.add_parser("plugins", help="show the plugins the service would load")
    psub = plugins.add_subparsers(dest="plugins_command", required=True)
    plist = psub.add_parser("list", help="each plugin's name, version, hooks and status")
    plist.add_argument("--format", choices=("text", "json"), default="text")
    plist.set_defaults(func=cmd_plugins_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
