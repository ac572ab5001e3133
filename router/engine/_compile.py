"""Cross-checks and compilation: decoded rule items → :class:`Ruleset`.

Runs after every item decoded on its own; here the items are checked against each other (ids
unique per stage, pools and reps that exist, overflow chains without loops) and every ``when`` is
compiled in the scope of its stage. Errors are appended, never raised, so the caller can report
all of them at once.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from leadrouter_sdk import Contribution, Score

import router.engine.schema as s
from router.engine._fused import Result, fuse
from router.engine._yaml import Document
from router.engine.errors import RuleError
from router.engine.evaluate import NO_RULE, Evaluation
from router.engine.evaluate import owner_route as owner_route_of
from router.engine.expr import CheckedExpr, ExprError, check, compile_stage
from router.engine.functions import Function
from router.engine.names import scope_for
from router.engine.ruleset import (
    CompiledRule,
    PoolSpec,
    RepSpec,
    Route,
    Ruleset,
    SlaSpec,
    Stage,
)

__all__ = ["compile_ruleset"]

_DEFAULT_REASONS = ("bad_fit", "no_budget", "not_ready", "duplicate", "spam", "wrong_territory")
_DEFAULT_QUEUE = "unassigned"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
DEFAULT_STATUS = "nurture"

Item = tuple[Document, tuple[str | int, ...], Any]


def _did_you_mean(word: str, options: Any, what: str) -> str:
    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.5)
    if close:
        return f"did you mean `{close[0]}`?"
    return f"define the {what} first" if not options else \
        f"known {what}s: {', '.join(sorted(options)[:10])}"


class _Compiler:
    def __init__(self, functions: Mapping[str, Function], errors: list[RuleError],
                 broken: frozenset[str] = frozenset()) -> None:
        self.functions = functions
        self.errors = errors
        self.broken = broken  # ids whose definition failed and was reported already
        self.windows: set[tuple[str, int]] = set()
        self.last_events: set[str] = set()
        self.names: set[str] = set()
        self.counter = 0

    def err(self, doc: Document, path: tuple[str | int, ...], msg: str, fix: str,
            rule: str | None, *, about: str | None = None) -> None:
        if about is not None and about in self.broken:
            return  # `about` failed to load and is reported on its own line
        self.errors.append(doc.error(path, msg, fix=fix, rule=rule))

    def unique(self, stage: str, items: list[Item], get_id: Any) -> None:
        seen: dict[str, int | None] = {}
        for doc, path, item in items:
            rid = get_id(item)
            if rid in seen:
                self.err(doc, path, f"duplicate {stage} id `{rid}` (first defined at line "
                         f"{seen[rid]})", "give every rule its own id", rid)
            else:
                seen[rid] = doc.where(path)[0]

    def expr(self, doc: Document, path: tuple[str | int, ...], rule_id: str, source: str,
             scope: Any) -> CheckedExpr | None:
        self.counter += 1
        try:
            checked = check(source, scope, prefix=str(self.counter))
        except ExprError as exc:
            line, col = doc.where((*path, "when"))
            if line is not None and exc.line > 1:
                line, col = line + exc.line - 1, exc.col + 1
            where = f" (at `{_fragment(source, exc)}`)" if source else ""
            self.errors.append(RuleError(file=doc.file, line=line, column=col, rule=rule_id,
                                         message=exc.message + where, fix=exc.fix))
            return None
        self.windows |= checked.windows
        self.last_events |= checked.last_events
        self.names |= checked.names
        return checked


def _fragment(source: str, exc: ExprError) -> str:
    lines = source.strip().splitlines() or [""]
    text = lines[min(exc.line, len(lines)) - 1]
    return text[exc.col:exc.col + 40] or text[:40]


def _target(t: s.Target) -> tuple[str, str]:
    return ("pool", t.pool) if t.pool else ("queue", t.queue or _DEFAULT_QUEUE)


def _reps(c: _Compiler, items: list[Item]) -> dict[str, RepSpec]:
    c.unique("rep", items, lambda r: r.id)
    reps: dict[str, RepSpec] = {}
    for _doc, _path, r in items:
        try:
            hours = s.parse_working_hours(r.working_hours)
        except ValueError:
            hours = ((),) * 7  # already reported by the loader
        reps.setdefault(r.id, RepSpec(id=r.id, name=r.name, timezone=r.timezone, hours=hours,
                                      weight=r.weight, daily_cap=r.daily_cap))
    return reps


def _pools(c: _Compiler, items: list[Item], reps: dict[str, RepSpec]) -> dict[str, PoolSpec]:
    pools: dict[str, PoolSpec] = {}
    ids = {pid for _, _, (pid, _) in items}
    for doc, path, (pid, p) in items:
        members: list[tuple[str, int]] = []
        if not _ID.match(pid):
            c.err(doc, path, f"pool id `{pid}` is not a valid id",
                  "use letters, digits and . _ : - (starting with a letter or digit)", pid)
        for i, m in enumerate(p.members):
            rep, weight = (m, None) if isinstance(m, str) else (m.rep, m.weight)
            if rep not in reps:
                c.err(doc, (*path, "members", i), f"pool member `{rep}` is not a rep",
                      _did_you_mean(rep, reps, "rep"), pid, about=rep)
                continue

            if any(rep == seen for seen, _ in members):
                c.err(doc, (*path, "members", i), f"`{rep}` is listed twice",
                      "list each rep once; use weight for a bigger share", pid)
                continue
            members.append((rep, weight or reps[rep].weight))
        if not p.members:
            c.err(doc, (*path, "members"), "a pool needs members",
                  "list rep ids under members", pid)
        kind, target = _target(p.overflow) if p.overflow else ("queue", _DEFAULT_QUEUE)
        if p.overflow and p.overflow.pool and p.overflow.queue:
            c.err(doc, (*path, "overflow"), "overflow names both a pool and a queue",
                  "keep one of them", pid)
        if kind == "pool" and target not in ids:
            c.err(doc, (*path, "overflow"), f"overflow pool `{target}` does not exist",
                  _did_you_mean(target, ids, "pool"), pid, about=target)
        pools[pid] = PoolSpec(id=pid, strategy=p.strategy, members=tuple(members),
                              daily_cap=p.daily_cap, pool_daily_cap=p.pool_daily_cap,
                              working_hours=p.working_hours, overflow_kind=kind,
                              overflow=target, description=p.description)
    for doc, path, (pid, _) in items:
        seen = [pid]
        cur = pools[pid]
        while cur.overflow_kind == "pool" and cur.overflow in pools:
            if cur.overflow in seen:
                c.err(doc, (*path, "overflow"), "overflow chain loops: "
                      + " → ".join([*seen, cur.overflow]),
                      "end the chain with a queue", pid)
                break
            seen.append(cur.overflow)
            cur = pools[cur.overflow]
    return pools


def _stage(c: _Compiler, name: str, mode: str, entries: list[tuple[CompiledRule, Any]]) -> Stage:
    rules = tuple(r for r, ex in entries if ex is not None)
    exprs = [ex for _, ex in entries if ex is not None]
    return Stage(name=name, mode=mode, rules=rules,
                 fn=compile_stage(name, mode, exprs, c.functions), exprs=tuple(exprs))


def compile_ruleset(items: dict[str, list[Item]], extra: dict[str, Any],
                    functions: Mapping[str, Function], errors: list[RuleError], *,
                    version: str, source: str, files: tuple[str, ...],
                    broken: frozenset[str] = frozenset()) -> Ruleset | None:
    c = _Compiler(functions, errors, broken)
    reps = _reps(c, items["reps"])
    pools = _pools(c, items["pools"], reps)
    grades = tuple(sorted((extra.get("grades") or {}).items(), key=lambda kv: -kv[1]))
    scoring_items = [(d, p, r) for d, p, (_, r) in items["scoring"]]
    c.unique("scoring", scoring_items, lambda r: r.id)
    for section in ("territories", "segments", "assignment", "sla"):
        c.unique(section.rstrip("s"), items[section], lambda r: r.id)
    for _d, path, q in items["qualification"]:
        if q.id is None:  # numbered by position in the file, even if an earlier item is invalid
            q.id = f"qualification.{int(path[-1]) + 1}.{q.status}"
    c.unique("qualification", items["qualification"], lambda r: r.id)

    # Broken ids count as known in expressions: their own error is reported already.
    ctx = dict(functions=functions, grades=frozenset(g for g, _ in grades),
               grade_thresholds=dict(grades),
               territories=frozenset(r.id for _, _, r in items["territories"]) | c.broken,
               segments=frozenset(r.id for _, _, r in items["segments"]) | c.broken,
               pools=frozenset(pools) | c.broken, reps=frozenset(reps) | c.broken,
               hit_ids=frozenset(r.id for _, _, r in scoring_items) | c.broken)

    def build(stage: str, section: list[Item], make: Any) -> list[tuple[CompiledRule, Any]]:
        scope = scope_for(stage, **ctx)  # type: ignore[arg-type]
        out = []
        for doc, path, item in section:
            rule = make(doc, path, item)
            if rule is None:
                continue
            out.append((rule, c.expr(doc, path, rule.id, item.when, scope)))
        return out

    def base(stage: str, doc: Document, path: tuple[str | int, ...], r: Any,
             **kw: Any) -> CompiledRule:
        return CompiledRule(id=r.id, stage=stage, when=r.when, file=doc.file,
                            line=doc.where(path)[0], description=r.description, **kw)

    groups = {id(r): g for _, _, (g, r) in items["scoring"]}
    scoring = build("scoring", scoring_items, lambda d, p, r: base(
        "scoring", d, p, r, group=groups[id(r)], points=float(r.points),
        contribution=Contribution(rule=r.id, group=groups[id(r)], points=float(r.points))))
    qualification = build("qualification", items["qualification"],
                          lambda d, p, r: base("qualification", d, p, r, status=r.status))
    territories = build("territories", items["territories"],
                        lambda d, p, r: base("territories", d, p, r))
    segments = build("segments", items["segments"], lambda d, p, r: base("segments", d, p, r))
    assignment = build("assignment", items["assignment"],
                       lambda d, p, r: _assign_rule(c, d, p, r, pools, reps, base))
    assignment = [(rule, _owner_guard(c, ex) if rule.target_kind == "account_owner" else ex)
                  for rule, ex in assignment]
    sla_policies: dict[str, SlaSpec] = {}
    sla = build("sla", items["sla"], lambda d, p, r: _sla_rule(c, d, p, r, pools, sla_policies,
                                                                base))
    if errors:
        return None
    stages = {"scoring": _stage(c, "scoring", "collect", scoring),
              "qualification": _stage(c, "qualification", "first", qualification),
              "territories": _stage(c, "territories", "first", territories),
              "segments": _stage(c, "segments", "first", segments),
              "assignment": _stage(c, "assignment", "first", assignment),
              "sla": _stage(c, "sla", "first", sla)}
    return Ruleset(
        version=version, source=source, files=files, grades=grades,
        scoring=stages["scoring"], qualification=stages["qualification"],
        territories=stages["territories"], segments=stages["segments"],
        assignment=stages["assignment"], sla=stages["sla"],
        pools=pools, reps=reps, sla_policies=sla_policies,
        holidays=frozenset(d.isoformat() for d in extra.get("holidays") or ()),
        reject_reasons=tuple(extra.get("reject_reasons") or _DEFAULT_REASONS),
        windows=frozenset(c.windows), last_events=frozenset(c.last_events),
        uses_account_owner="account_owner" in c.names,
        rules={f"{r.stage}:{r.id}": r for st in (scoring, qualification, territories, segments,
                                                  assignment, sla) for r, _ in st},
        run=_fuse(stages, grades, functions),
    )


def _fuse(stages: dict[str, Stage], grades: tuple[tuple[str, float], ...],
          functions: Mapping[str, Function]) -> Any:
    scoring = stages["scoring"].rules
    assignment = stages["assignment"].rules
    targets = tuple((r.target if r.target_kind == "pool" else None,
                     r.target if r.target_kind == "queue" else None) for r in assignment)
    first = ("qualification", "territories", "segments", "assignment", "sla")
    names = {n: tuple(r.id for r in stages[n].rules) for n in first}

    def owner_route(index: int, owner: str, company_domain: str | None) -> Route:
        return owner_route_of(assignment[index], owner, company_domain)

    def errors(raised: list[tuple[str, int]]) -> tuple[str, ...]:
        return tuple(f"{name}:{stages[name].rules[i].id}" for name, i in raised)

    result = Result(make=Evaluation, score=Score,
                    rule_ids={n: (*((i,) for i in names[n]), ()) for n in first},
                    routes=(*(r.route for r in assignment), NO_RULE),
                    owner_route=owner_route, errors=errors)
    return fuse(
        {name: list(stage.exprs) for name, stage in stages.items()},
        groups=[r.group or "fit" for r in scoring], points=[r.points or 0.0 for r in scoring],
        scoring_ids=[r.id for r in scoring], contributions=[r.contribution for r in scoring],
        outcomes={"qualification": (*(r.status or DEFAULT_STATUS
                                      for r in stages["qualification"].rules), DEFAULT_STATUS),
                  "territories": (*(r.id for r in stages["territories"].rules), None),
                  "segments": (*(r.id for r in stages["segments"].rules), None),
                  "sla": (*(r.id for r in stages["sla"].rules), None)},
        grades=grades, assignment_targets=(*targets, (None, _DEFAULT_QUEUE)),
        functions=functions, result=result)


def _owner_guard(c: _Compiler, ex: CheckedExpr | None) -> CheckedExpr | None:
    """`assign: account_owner` only applies when there is an owner to assign to."""
    if ex is None:
        return None
    c.names.add("account_owner")
    guard = ast.Compare(left=ast.Subscript(value=ast.Name(id="_e", ctx=ast.Load()),
                                           slice=ast.Constant(value="account_owner"),
                                           ctx=ast.Load()),
                        ops=[ast.IsNot()], comparators=[ast.Constant(value=None)])
    return msgspec.structs.replace(ex, node=ast.BoolOp(op=ast.And(), values=[ex.node, guard]))


def _assign_rule(c: _Compiler, doc: Document, path: tuple[str | int, ...], r: s.AssignRule,
                 pools: dict[str, PoolSpec], reps: dict[str, RepSpec],
                 base: Callable[..., CompiledRule]) -> CompiledRule | None:
    chosen = [(k, v) for k, v in (("account_owner", r.assign), ("owner", r.owner),
                                  ("pool", r.pool), ("queue", r.queue)) if v is not None]
    if len(chosen) != 1:
        c.err(doc, path, "an assignment rule needs exactly one of assign / owner / pool / queue",
              "e.g. `pool: na-ent` or `queue: unassigned`", r.id)
        return None
    kind, target = chosen[0]
    if kind == "pool" and target not in pools:
        c.err(doc, (*path, "pool"), f"pool `{target}` does not exist",
              _did_you_mean(target, pools, "pool"), r.id, about=target)
    if kind == "owner" and target not in reps:
        c.err(doc, (*path, "owner"), f"rep `{target}` does not exist",
              _did_you_mean(target, reps, "rep"), r.id, about=target)
    route = None
    if kind == "owner":
        route = Route(kind=kind, target=target, rule=r.id,
                      reason=f"rule {r.id} names {target} as the owner")
    elif kind == "pool" and target in pools:
        route = Route(kind=kind, target=target, rule=r.id, reason=f"rule {r.id} sends the lead "
                      f"to pool {target} ({pools[target].strategy})")
    elif kind == "queue":
        route = Route(kind=kind, target=target, rule=r.id,
                      reason=f"rule {r.id} sends the lead to queue {target}")
    return base("assignment", doc, path, r, target_kind=kind,
                target=None if kind == "account_owner" else target, route=route)


def _sla_rule(c: _Compiler, doc: Document, path: tuple[str | int, ...], r: s.SlaRule,
              pools: dict[str, PoolSpec], out: dict[str, SlaSpec],
              base: Callable[..., CompiledRule]) -> CompiledRule | None:
    try:
        within = s.parse_duration(r.accept_within)
    except ValueError as exc:
        c.err(doc, (*path, "accept_within"), str(exc), "write e.g. 30s, 5m, 4h, 2d or 1h30m",
              r.id)
        return None
    warn = _warn_before(c, doc, path, r, within)
    targets: dict[str, tuple[str, str | None]] = {}
    for key, value in (("on_breach", r.on_breach), ("final", r.final)):
        if isinstance(value, s.Target):
            kind, target = _target(value)
            if kind == "pool" and target not in pools:
                c.err(doc, (*path, key), f"pool `{target}` does not exist",
                      _did_you_mean(target, pools, "pool"), r.id, about=target)
            targets[key] = (kind, target)
        else:
            targets[key] = (value, None) if value else ("", None)
    out[r.id] = SlaSpec(id=r.id, accept_within=within, clock=r.clock,
                        on_breach=targets["on_breach"][0],
                        on_breach_target=targets["on_breach"][1],
                        max_reassignments=r.max_reassignments,
                        final=targets["final"][0] or None, final_target=targets["final"][1],
                        warn_before=warn)
    return base("sla", doc, path, r)


def _warn_before(c: _Compiler, doc: Document, path: tuple[str | int, ...], r: s.SlaRule,
                 within: int) -> int | None:
    """The policy's ``warn_before`` in seconds (None: not set); on the wall clock it must be
    shorter than ``accept_within`` (a warning before the assignment is no warning)."""
    if r.warn_before is None:
        return None
    try:
        warn = 0 if str(r.warn_before).strip() == "0" else s.parse_duration(r.warn_before)
    except ValueError as exc:
        c.err(doc, (*path, "warn_before"), str(exc), "write e.g. 5m, 1h, or 0 for none", r.id)
        return None
    if r.clock == "wall" and warn >= within > 0:
        c.err(doc, (*path, "warn_before"), f"warn_before ({r.warn_before}) is not shorter "
              f"than accept_within ({r.accept_within}): the warning would never come",
              "make it shorter than accept_within, or 0 for no warning", r.id)
        return None
    return warn
