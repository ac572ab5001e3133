"""Rule test cases: ``rules/tests/*.yaml`` — a lead in, expected decisions out.

Cases are how ops prove a rule change does what they meant before it goes live: ``leadrouter
rules test`` runs them, and a reload in the running service refuses a ruleset whose cases fail.
Expectations are partial: a case states only what it cares about.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec
from leadrouter_sdk import lead_from_mapping
from msgspec import UNSET, UnsetType

from router.engine._yaml import Document, load_yaml
from router.engine.engagement import DAY_MS, activity_from_times, ms, windows
from router.engine.errors import RuleError, RulesetError
from router.engine.evaluate import Evaluation, Snapshot, evaluate
from router.engine.ruleset import Ruleset

__all__ = ["Case", "CaseResult", "load_case_texts", "load_cases", "run_cases", "snapshot_for"]

DEFAULT_NOW = datetime.datetime(2026, 1, 6, 15, 0, tzinfo=datetime.UTC)  # a Tuesday afternoon


class ScoreRange(msgspec.Struct, forbid_unknown_fields=True):
    min: float | None = None
    max: float | None = None


class Expect(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What a case checks. A key left out is not checked; for the outcomes that can be absent
    (grade, territory, segment, assignment rule, sla) an explicit ``null`` asserts absence."""

    status: str | UnsetType = UNSET
    grade: str | UnsetType | None = UNSET
    territory: str | UnsetType | None = UNSET
    segment: str | UnsetType | None = UNSET
    pool: str | UnsetType = UNSET
    queue: str | UnsetType = UNSET
    owner: str | UnsetType = UNSET
    rule: str | UnsetType | None = UNSET
    sla: str | UnsetType | None = UNSET
    score: float | ScoreRange | UnsetType = UNSET
    matched: list[str] = []
    not_matched: list[str] = []


class PastEvent(msgspec.Struct, forbid_unknown_fields=True):
    event: str
    # at most a century back: further is no event a rule can read, and overflows the clock
    days_ago: Annotated[float, msgspec.Meta(ge=0, le=36500)] = 0.0


class CaseState(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    account_owner: str | None = None
    events: list[PastEvent] = []


class Case(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    lead: dict[str, Any]
    expect: Expect
    state: CaseState = msgspec.field(default_factory=CaseState)
    now: datetime.datetime | None = None
    file: str = ""
    line: int | None = None


class CaseResult(msgspec.Struct, kw_only=True):
    case: Case
    failures: list[str]
    evaluation: Evaluation | None = None

    @property
    def ok(self) -> bool:
        return not self.failures


def snapshot_for(state: CaseState, windows_: frozenset[tuple[str, int]],
                 now: datetime.datetime) -> Snapshot:
    """Turn "events N days ago" into the counts and last-seen times the rules read: the
    events as the activity a person with them would have stored, read the way live routing
    reads it (:func:`router.engine.engagement.windows`), so a rule test case, a dry run and a
    real lead see the same values. An event counts in an N-day window when it happened less
    than N days before ``now``.
    """
    now_ms = ms(now)
    times: dict[str, list[int]] = {}
    for e in state.events:
        times.setdefault(e.event, []).append(now_ms - round(e.days_ago * DAY_MS))
    if not times:
        return Snapshot(account_owner=state.account_owner,
                        counts=dict.fromkeys(windows_, 0), last={})
    activity = activity_from_times(times, now_ms)
    counts, last = windows(activity, windows_, times, now)  # last(): every event given
    return Snapshot(account_owner=state.account_owner, counts=counts, last=last,
                    activity=activity)


def load_case_texts(files: Mapping[str, str]) -> list[Case]:
    """Parse case files; raises :class:`RulesetError` with every malformed case."""
    cases: list[Case] = []
    errors: list[RuleError] = []
    for name, text in sorted(files.items()):
        try:
            doc = load_yaml(name, text)
        except RulesetError as exc:
            errors.extend(exc.errors)
            continue
        cases.extend(_cases_of(doc, errors))
    if errors:
        raise RulesetError(errors)
    return cases


def _cases_of(doc: Document, errors: list[RuleError]) -> list[Case]:
    data = doc.data
    items = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(items, list):
        errors.append(doc.error((), "a case file needs a `cases:` list",
                                fix="see rules/tests/ for examples"))
        return []
    out = []
    for i, item in enumerate(items):
        try:
            case = msgspec.convert(item, Case, strict=False)
        except msgspec.ValidationError as exc:
            name = item.get("name") if isinstance(item, dict) else None
            errors.append(doc.error(("cases", i), f"invalid case: {exc}",
                                    fix="a case has name, lead, expect (and optional state, "
                                    "now)", rule=name if isinstance(name, str) else None))
            continue
        case.file, case.line = doc.file, doc.where(("cases", i))[0]
        out.append(case)
    return out


def load_cases(directory: str | Path) -> list[Case]:
    """Cases from ``DIR/tests/*.yaml`` (none when the folder does not exist)."""
    root = Path(directory) / "tests"
    if not root.is_dir():
        return []
    files = {str(p): p.read_text(encoding="utf-8")
             for p in sorted([*root.glob("*.yaml"), *root.glob("*.yml")])}
    return load_case_texts(files)


def _check(case: Case, ev: Evaluation) -> list[str]:
    exp = case.expect
    failures = []

    def same(label: str, want: Any, got: Any) -> None:
        if want is UNSET or want == got:
            return
        failures.append(f"{label}: expected {'none' if want is None else repr(want)}, got "
                        f"{'none' if got is None else repr(got)}")

    same("status", exp.status, ev.status)
    same("grade", exp.grade, ev.score.grade)
    same("territory", exp.territory, ev.territory)
    same("segment", exp.segment, ev.segment)
    same("assignment rule", exp.rule, ev.route.rule)
    same("sla", exp.sla, ev.sla_policy)
    route = f"{ev.route.kind} {ev.route.target}"
    for kind, want in (("pool", exp.pool), ("queue", exp.queue), ("owner", exp.owner)):
        kinds = ("owner", "account_owner") if kind == "owner" else (kind,)
        if want is not UNSET and not (ev.route.kind in kinds and ev.route.target == want):
            failures.append(f"{kind}: expected {want!r}, got {route}")
    total = ev.score.total
    if isinstance(exp.score, ScoreRange):
        if (exp.score.min is not None and total < exp.score.min) or (
                exp.score.max is not None and total > exp.score.max):
            failures.append(f"score: expected {exp.score.min}..{exp.score.max}, got {total:g}")
    elif isinstance(exp.score, float | int) and abs(exp.score - total) > 1e-9:
        failures.append(f"score: expected {exp.score:g}, got {total:g}")
    if ev.errors:
        failures.append(f"rules raised errors (treated as not matching): {list(ev.errors)}")
    missing = [r for r in exp.matched if r not in ev.matched]
    if missing:
        failures.append(f"expected to match {missing}, matched {list(ev.matched)}")
    unexpected = [r for r in exp.not_matched if r in ev.matched]
    if unexpected:
        failures.append(f"expected not to match {unexpected}")
    return failures


def run_cases(ruleset: Ruleset, cases: list[Case], *, keyword: str | None = None,
              now: datetime.datetime = DEFAULT_NOW) -> list[CaseResult]:
    """Evaluate each case (whose name contains ``keyword``, if given) and compare."""
    results = []
    for case in cases:
        if keyword and keyword.lower() not in case.name.lower():
            continue
        when = case.now or now
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        try:
            lead = lead_from_mapping(case.lead)
        except (msgspec.ValidationError, TypeError, ValueError) as exc:
            results.append(CaseResult(case=case, failures=[f"invalid lead: {exc}"]))
            continue
        ev = evaluate(ruleset, lead, snapshot_for(case.state, ruleset.windows, when), now=when)
        results.append(CaseResult(case=case, failures=_check(case, ev), evaluation=ev))
    return results
