"""``leadrouter plugins test-notify PLUGIN --rep REP [--lead-json FILE]``: send a sample.

Builds the event a real assignment to REP would give the channel — the lead (a sample, or the
JSON file's) decided by the rules through the service's own ``decide()`` (its explanation is the
message's "why you"), due at the SLA deadline the rules give (or in 30 minutes), the rep's time
zone from rules/reps.yaml, and signed action links when ``LEADROUTER_ACTION_SECRET`` is set —
and hands it to the plugin's ``on_event`` through the plugin host (its event budget), exactly
as the outbox delivery would. Prints what was sent (the plugin's ``preview`` and log lines) or
the error with what to fix; exits 1 when the channel did not take it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import sys
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["add_test_notify", "cmd_test_notify", "sample_event"]

SAMPLE_LEAD: dict[str, Any] = {
    "email": "sam.sample@northwind-labs.com", "first_name": "Sam", "last_name": "Sample",
    "title": "VP Engineering", "company": "Example Corp", "domain": "northwind-labs.com",
    "employees": 250, "country": "US", "source": "test-notify",
}


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname.lower()}: {record.getMessage()}")


def sample_event(args: argparse.Namespace, ruleset: Any, host: Any, settings: Any) -> Any:
    """The ``lead.assigned`` event of the sample lead assigned to ``args.rep``."""
    from leadrouter_sdk import Event, lead_from_mapping

    from router.engine.backend import compiled_evaluator
    from router.engine.cases import CaseState
    from router.services.decide import dry_run

    raw = Path(args.lead_json).read_bytes() if args.lead_json else msgspec.json.encode(
        SAMPLE_LEAD)
    lead = lead_from_mapping(msgspec.json.decode(raw))
    now = dt.datetime.now(dt.UTC)
    plan = asyncio.run(dry_run(lead, CaseState(), now, ruleset,
                               evaluator=compiled_evaluator(ruleset), plugins=host))
    due = plan.due_by_rep.get(args.rep) or plan.due_at or now + dt.timedelta(minutes=30)
    lead_id = f"ld_test_{int(now.timestamp())}"
    ev = plan.evaluation
    # as JSON, like the stored decision an outbox event carries
    record = msgspec.json.decode(msgspec.json.encode(
        {"lead": plan.lead, "score": ev.score, "status": ev.status,
         "explanation": plan.explanation, "source": "test-notify"}))
    data: dict[str, Any] = {"owner": args.rep, "pool": args.pool or "", "state": "assigned",
                            "due_at": due, "reason": f"sample sent by test-notify to {args.rep}",
                            "decision": record,
                            "owner_timezone": ruleset.reps[args.rep].timezone}
    if not data["pool"]:
        del data["pool"]
    if args.type == "sla.warning":
        data["minutes_left"] = max(0, int((due - now).total_seconds() // 60))
    links = _links(settings, lead_id, args.rep, due)
    if links:
        data["links"] = links
    event_id = f"{int(now.timestamp() * 1000)}-0"
    return Event(id=event_id, type=args.type, lead_id=lead_id, at=now, data=data)


def _links(settings: Any, lead_id: str, rep: str, due: dt.datetime) -> dict[str, str] | None:
    from router.services.link_signing import LinkMaker

    # making links reads no state: no Redis connection is needed for it
    maker = LinkMaker(settings=settings, clock=lambda: dt.datetime.now(dt.UTC))
    if maker.signer is None:
        return None
    return maker.links(lead_id, rep, due)


def cmd_test_notify(args: argparse.Namespace) -> int:
    from router.engine.errors import RulesetError
    from router.engine.loader import load_directory
    from router.intake.config import compile_intake
    from router.plugins.host import DeliveryFailed, DeliveryRejected, PluginHost
    from router.settings import Settings

    settings = Settings.from_env()
    host = PluginHost.from_settings(settings, metrics=False)
    info = next((i for i in host.plugins() if i.name == args.plugin), None)
    if info is None or info.status != "active" or "on_event" not in info.hooks:
        why = "not installed" if info is None else (
            f"{info.status}: {info.error}" if info.status != "active" else "it has no on_event")
        print(f"error: plugin {args.plugin!r} cannot be tested: {why} (see `leadrouter plugins "
              "list` and docs/notifications.md)", file=sys.stderr)
        return 1
    try:
        ruleset = load_directory(args.directory, functions=host.functions(),
                                 intake=compile_intake)
    except RulesetError as exc:
        print(exc.summary(), file=sys.stderr)
        return 2
    if args.rep not in ruleset.reps:
        print(f"error: no rep {args.rep!r} in {args.directory}/reps.yaml — pass one of: "
              f"{', '.join(sorted(ruleset.reps))}", file=sys.stderr)
        return 2
    try:
        event = sample_event(args, ruleset, host, settings)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError, TypeError) as exc:
        print(f"error: cannot read the lead: {exc} — pass a JSON object of lead fields",
              file=sys.stderr)
        return 2
    plugin = host.pm.get_plugin(args.plugin)
    print(f"{event.type} for lead {event.lead_id} to rep {args.rep} "
          f"({'with' if 'links' in event.data else 'without'} action links) via {args.plugin}")
    preview = getattr(plugin, "preview", None)
    if args.show and callable(preview):
        print(preview(event))
    lines = _Lines()
    logger = logging.getLogger("leadrouter.plugins")
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    try:
        asyncio.run(host.deliver(args.plugin, event))
    except DeliveryRejected as exc:
        _print(lines)
        print(f"refused for good (the outbox would dead-letter it): {exc}", file=sys.stderr)
        return 1
    except DeliveryFailed as exc:
        _print(lines)
        print(f"failed (the outbox would retry it): {exc}", file=sys.stderr)
        return 1
    finally:
        logger.removeHandler(lines)
    _print(lines)
    print("sent")
    return 0


def _print(lines: _Lines) -> None:
    for line in lines.lines:
        print(f"  {line}")


def add_test_notify(psub: Any, rules_dir: Any) -> None:
    test = psub.add_parser("test-notify", help="send a sample assignment through a channel "
                           "plugin (slack, email, ...) and report what happened")
    test.add_argument("plugin", help="the plugin's name, as `leadrouter plugins list` shows")
    test.add_argument("--rep", required=True, help="a rep id of rules/reps.yaml")
    test.add_argument("--lead-json", metavar="FILE", help="a JSON object of lead fields "
                      "(default: a sample lead)")
    test.add_argument("--pool", help="the pool to name in the message")
    test.add_argument("--type", default="lead.assigned",
                      choices=("lead.assigned", "lead.reassigned", "sla.warning",
                               "lead.breached"), help="the event to send (lead.assigned)")
    test.add_argument("--show", action="store_true",
                      help="also print the message as the plugin renders it")
    rules_dir(test)
    test.set_defaults(func=cmd_test_notify)
