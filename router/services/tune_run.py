"""One ``leadrouter rules tune`` run: the window's decided leads and outcomes read
(router/services/outcome_reader.py), the proposal fitted (router/services/tune.py), a candidate
rules directory written (a copy of the current rules with only ``points:`` changed,
router/services/tune_yaml.py) and replayed over the same window
(router/services/replay.py) for the status transitions the proposal would cause; and the
report. Nothing is applied: the output directory is for ops to review, ``rules test`` and
``rules replay``, and publish if they agree."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import msgspec

from router.engine.ruleset import Ruleset
from router.plugins.host import PluginHost
from router.services.calibration_render import table
from router.services.outcome_reader import OutcomeReader, funnel_of, scoring_rules
from router.services.replay import ReplayService
from router.services.replay_model import ReplayedLead, ReplayQuery
from router.services.replay_options import load_rules
from router.services.tune import TuneResult, propose
from router.services.tune_yaml import format_points, rewrite_points
from router.state.store import Store

__all__ = ["REPORT", "TuneReport", "render_tune", "run_tune", "write_candidate"]

REPORT = "tune-report"  # .md / .json in the output directory


class TuneReport(msgspec.Struct, frozen=True, kw_only=True):
    result: TuneResult
    since: dt.datetime | None
    until: dt.datetime | None
    output: str
    files: tuple[str, ...]  # the rule files rewritten (relative to the output directory)
    replayed: int
    transitions: dict[str, int]  # "mql -> sql": leads whose status the proposal changes


def write_candidate(rules_dir: Path, output: Path, ruleset: Ruleset,
                    proposed: dict[str, float]) -> tuple[str, ...]:
    """``output`` = a copy of ``rules_dir`` with the proposed points; the files changed."""
    if output.resolve() == rules_dir.resolve():
        raise ValueError(f"--output {output} is the rules directory itself — tune never "
                         "changes the live rules; give another directory")
    shutil.copytree(rules_dir, output, dirs_exist_ok=True)
    by_file: dict[str, dict[str, float]] = {}
    for rule in ruleset.scoring.rules:
        if rule.id in proposed:
            by_file.setdefault(rule.file, {})[rule.id] = proposed[rule.id]
    files = []
    for file, points in sorted(by_file.items()):
        relative = os.path.relpath(file, rules_dir)
        target = output / relative
        text, _ = rewrite_points(target.read_text(), points)
        target.write_text(text)
        files.append(relative)
    return tuple(files)


async def run_tune(store: Store, ruleset: Ruleset, rules_dir: Path, output: Path, *,
                   target: str | None, since: dt.datetime | None, until: dt.datetime | None,
                   plugins: PluginHost | None = None, seed: int = 0, bootstrap: int = 100,
                   progress: Callable[[int], None] | None = None) -> TuneReport:
    """Raises TooFew / AnalyticsMissing (router/services/tune.py), TargetError, RulesetError
    (the candidate does not load: a bug, reported as such), StateError."""
    replay = ReplayService(store, plugins=plugins)
    await replay.prepare()  # leads older than the arrival index, if never indexed
    reader = OutcomeReader(store, funnel=funnel_of(ruleset), target=target, since=since,
                           until=until)
    rows = [facts async for page in reader.pages(progress) for facts in page]
    result = propose(rows, scoring_rules(ruleset), target=reader.target, seed=seed,
                     bootstrap=bootstrap)
    changed = {r.rule: r.proposed for r in result.changed}
    files = write_candidate(rules_dir, output, ruleset, changed)
    candidate = load_rules(output, plugins.functions() if plugins is not None else None)
    transitions: dict[str, int] = {}
    replayed = 0
    async for item in replay.run(candidate, ReplayQuery(since=since, until=until)):
        if isinstance(item, ReplayedLead):
            replayed += 1
            if item.before.status != item.after.status:
                key = f"{item.before.status} -> {item.after.status}"
                transitions[key] = transitions.get(key, 0) + 1
    report = TuneReport(result=result, since=since, until=until, output=str(output),
                        files=files, replayed=replayed,
                        transitions=dict(sorted(transitions.items(), key=lambda kv: -kv[1])))
    (output / f"{REPORT}.md").write_bytes(render_tune(report, "markdown"))
    (output / f"{REPORT}.json").write_bytes(render_tune(report, "json"))
    return report


def render_tune(report: TuneReport, fmt: str) -> bytes:
    """``fmt``: ``json``, ``text`` or ``markdown``."""
    if fmt == "json":
        return msgspec.json.encode({**msgspec.structs.asdict(report),
                                    "changed": [r.rule for r in report.result.changed]})
    md = fmt == "markdown"
    h = "## " if md else ""
    r = report.result
    out = [("# " if md else "") + f"Proposed scoring points: conversion to {r.target!r}", "",
           f"{r.leads} decided leads, {r.converted} converted; fitted on {r.train}, judged on "
           f"a holdout of {r.holdout}. Nothing was applied: review {report.output}, run "
           f"`leadrouter rules test {report.output}`, then publish it if you agree.", "",
           f"{h}Holdout", "",
           *table(["points", "AUC", "top-decile lift"],
                  [["current", f"{r.auc_current:.3f}", f"{r.lift_current:.2f}x"],
                   ["proposed", f"{r.auc_proposed:.3f}", f"{r.lift_proposed:.2f}x"]], md),
           f"Method: L2 logistic regression on the rule hits; a rule changes only when its "
           f"coefficient is beyond {r.z_threshold:.2f} bootstrap standard errors "
           f"({r.bootstrap} resamples; 5% Bonferroni-corrected); points = coefficient x "
           f"{r.scale:.1f}, rounded to {r.granularity:g}.", ""]
    moved = r.changed
    out += [f"{h}Rules changed ({len(moved)}), largest change first", ""]
    out += table(["rule", "points", "proposed", "why"],
                 [[t.rule, format_points(t.points), format_points(t.proposed), t.why]
                  for t in moved], md) if moved else ["No significant change.", ""]
    out += [f"{h}Status transitions on the same leads ({report.replayed} replayed)", ""]
    out += table(["transition", "leads"], [[k, str(v)] for k, v in
                                           report.transitions.items()], md) \
        if report.transitions else ["None: every replayed lead keeps its status.", ""]
    out += [f"{h}Every rule, by coefficient", "",
            *table(["rule", "points", "proposed", "matched", "coef", "z"],
                   [[t.rule, format_points(t.points), format_points(t.proposed),
                     str(t.matched), "-" if t.coef is None else f"{t.coef:+.2f}",
                     "-" if t.z is None else f"{t.z:+.1f}"] for t in r.rules], md)]
    return ("\n".join(out).rstrip() + "\n").encode()
