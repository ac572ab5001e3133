"""The durable-rules engine: a :class:`~router.engine.Ruleset` run stage by stage on
durable-rules (see the package docstring for how and why).

    engine = DurableEngine(ruleset)              # raises DurableUnsupported, listing rules
    ev = engine.evaluate(lead, snapshot, now=now)

Each stage (scoring, grades, qualification, territories, segments, assignment, sla) is one
durable-rules ruleset in its JSON form; every rule is one durable-rules rule (or a few, when a
long ``or`` has to be split) whose action only records which rule fired. Per lead and stage the
engine builds one fact (:mod:`leadrouter_durable._translate` explains its layout), asserts it,
drains the actions, and retracts it again, so nothing is left behind between leads. Collect
stages (scoring) keep every rule that fired, in file order; first-match stages take the lowest
index. The outputs of each stage (score, grade, status, territory, ...) are fields of the next
stage's fact. What durable-rules cannot express is computed first or refused at load, with the
reason: see the translate module.

The durable-rules C API is used directly (``create_ruleset`` / ``assert_fact`` /
``start_action_for_state`` / ``complete_and_start_action`` / ``retract_fact``) rather than
``durable.engine.Host``: the Host starts daemon threads that poll every ruleset for pending
actions every 200 ms, which would race with this synchronous use, and wraps every action in
Python closures and JSON round trips that only cost time here.
"""

from __future__ import annotations

import datetime
import itertools
import json
import weakref
from collections.abc import Mapping
from typing import Any

from leadrouter_sdk import Contribution, Lead, Score

from leadrouter_durable import _ir as ir
from leadrouter_durable._native import LOCK, delete_rulesets, native
from leadrouter_durable._translate import (
    StagePlan,
    StageTranslator,
    Unsupported,
    encode,
    split_condition,
)
from leadrouter_durable.errors import DurableError, DurableUnsupported
from router.engine import (
    BUILTINS,
    DEFAULT_STATUS,
    NO_RULE,
    CompiledRule,
    Evaluation,
    Function,
    Route,
    Ruleset,
    Snapshot,
    Stage,
    build_env,
    owner_route,
)
from router.engine.engagement import contributions as decayed_points
from router.engine.schema import STATUSES

__all__ = ["DurableEngine"]

_EMPTY = Snapshot()
_SID = "0"
_names = itertools.count()


class _Runtime:
    """One stage as a live durable-rules ruleset."""

    __slots__ = ("actions", "handle", "name", "plan", "readers")

    def __init__(self, plan: StagePlan, handle: int | None) -> None:
        self.plan = plan
        self.name = plan.name
        self.handle = handle
        self.actions = plan.actions
        # per value: how to read it, and the JSON text that starts its property in each slot
        self.readers = [(src.get, {slot: f',"{key}":' for slot, key in src.keys.items()}, src)
                        for src in plan.sources]


class DurableEngine:
    """A :class:`Ruleset` translated to durable-rules; ``evaluate`` mirrors the compiled engine.

    ``functions`` are the expression functions the ruleset was loaded with (the built-ins
    unless plugins added some). Raises :class:`DurableUnsupported` listing every rule it cannot
    run, :class:`DurableUnavailable` when durable-rules cannot be imported.
    """

    def __init__(self, ruleset: Ruleset, *,
                 functions: Mapping[str, Function] | None = None) -> None:
        module = native()
        self.ruleset = ruleset
        self._dr = module
        self._lock = LOCK
        self._ids = itertools.count(1)
        functions = BUILTINS if functions is None else functions
        problems: list[str] = []
        # status and grade order by rank, not as text (as in router/engine/expr.py)
        ranks = {"status": {v: float(i) for i, v in enumerate(STATUSES)},
                 "grade": dict(ruleset.grades)}
        plans = {
            "scoring": self._translate(ruleset.scoring, functions, problems, ranks),
            "grades": self._grades(ruleset, functions),
            "qualification": self._translate(ruleset.qualification, functions, problems, ranks),
            "territories": self._translate(ruleset.territories, functions, problems, ranks),
            "segments": self._translate(ruleset.segments, functions, problems, ranks),
            "assignment": self._translate(ruleset.assignment, functions, problems, ranks),
            "sla": self._translate(ruleset.sla, functions, problems, ranks),
        }
        if problems:
            raise DurableUnsupported(problems)
        self._handles: list[int] = []
        self._finalizer = weakref.finalize(self, delete_rulesets, module, self._handles)
        runtimes: dict[str, _Runtime] = {}
        with LOCK:
            for name, plan in plans.items():
                assert plan is not None
                handle = None
                if plan.actions:
                    try:
                        handle = module.create_ruleset(f"leadrouter{next(_names)}_{name}",
                                                       plan.definition)
                    except Exception as exc:
                        raise DurableError(f"durable-rules refused the {name} stage: {exc}; "
                                           f"definition: {plan.definition[:2000]}") from exc
                    self._handles.append(handle)
                runtimes[name] = _Runtime(plan, handle)
        self._stages = runtimes

    # -- translation ---------------------------------------------------------------------------
    @staticmethod
    def _translate(stage: Stage, functions: Mapping[str, Function], problems: list[str],
                   ranks: Mapping[str, Mapping[str, float]]) -> StagePlan | None:
        t = StageTranslator(stage.name, functions, ranks)
        rules: list[tuple[str, ir.Node, list[str]]] = []
        for index, rule in enumerate(stage.rules):
            try:
                node, computed = t.rule(index, rule.when)
                if rule.target_kind == "account_owner":
                    # like the compiler: `assign: account_owner` needs an owner to assign to
                    t.rule_index = index
                    node = ir.all_of(node, ir.negate(t.equal(t.name("account_owner"),
                                                             t.literal(None))))
                    t.rule_index = -1
                split_condition(node)
            except Unsupported as exc:
                problems.append(f"{stage.name}:{rule.id} ({_where(rule)}): {exc}")
                continue
            except SyntaxError as exc:  # the loader checked it; only a hand-made Ruleset
                problems.append(f"{stage.name}:{rule.id} ({_where(rule)}): {exc.msg}")
                continue
            rules.append((rule.id, node, computed))
        if len(rules) != len(stage.rules):
            return None
        try:
            return t.plan(rules)
        except Unsupported as exc:
            problems.append(f"{stage.name}: {exc}")
            return None

    @staticmethod
    def _grades(ruleset: Ruleset, functions: Mapping[str, Function]) -> StagePlan:
        """The grade table as a first-match stage: grade X when ``score >= threshold``."""
        t = StageTranslator("grades", functions)
        rules: list[tuple[str, ir.Node, list[str]]] = []
        for index, (letter, threshold) in enumerate(ruleset.grades):
            t.rule_index = index
            rules.append((letter, t.order("gte", t.name("score"), t.literal(threshold)), []))
        t.rule_index = -1
        return t.plan(rules)

    # -- running -------------------------------------------------------------------------------
    def _fire(self, stage: _Runtime, env: dict[str, Any]) -> tuple[list[int], set[int]]:
        """Indices of the rules that matched (ascending) and of those whose values raised."""
        raised: set[int] = set()
        parts = [f'{{"sid":"{_SID}","id":{next(self._ids)},"k":1']
        append = parts.append
        for get, prefixes, src in stage.readers:
            try:
                value = get(env)
                if value is None:
                    continue
                slot, text = encode(value)  # type: ignore[misc]
            except Exception as exc:
                if not src.computed:
                    raise DurableError(f"{stage.name}: cannot read {src.label}: {exc}") from exc
                raised |= src.rules  # a plugin function raised: its rules do not match
                continue
            prefix = prefixes.get(slot)
            if prefix is None:
                raise DurableError(f"{stage.name}: {src.label} is {type(value).__name__} "
                                   f"{value!r}, not the kind its rules were translated for")
            append(prefix + text)
        if stage.handle is None:
            return [], raised
        parts.append("}")
        fact = "".join(parts)
        dr, handle = self._dr, stage.handle
        fired: set[int] = set()
        result, state = dr.assert_fact(handle, fact)
        try:
            if result == 0:
                try:
                    action = dr.start_action_for_state(handle, state)
                    while action:
                        messages = action[1] if isinstance(action, tuple) else action
                        fired.add(stage.actions[messages[2:messages.index('"', 2)]])
                        action = dr.complete_and_start_action(handle, state)
                except BaseException:
                    dr.abandon_action(handle, state)
                    raise
            elif result != 1:  # 1: no rule cares about this fact
                raise DurableError(f"{stage.name}: durable-rules answered {result} to a fact")
        finally:
            dr.retract_fact(handle, fact)
        return sorted(fired - raised), raised

    def _first(self, stage: _Runtime, env: dict[str, Any], errors: list[str]) -> int:
        fired, raised = self._fire(stage, env)
        index = fired[0] if fired else -1
        rules = stage.plan.rules
        # the compiled stage stops at the first match: later rules never run, never raise
        errors.extend(f"{stage.name}:{rules[i].rule_id}" for i in sorted(raised)
                      if index < 0 or i < index)
        return index

    def evaluate(self, lead: Lead, snapshot: Snapshot | None = None, *,
                 now: datetime.datetime, extra: tuple[Contribution, ...] = ()) -> Evaluation:
        """The same as :func:`router.engine.evaluate`, decided by durable-rules."""
        ruleset = self.ruleset
        snap = snapshot or _EMPTY
        activity = getattr(snap, "activity", None)
        spec = getattr(ruleset, "engagement", None)
        if activity is not None and spec is not None:  # decayed engagement points
            extra = (*extra, *decayed_points(spec, activity, now))
        env = build_env(lead, snap, now)
        # contributions from outside the rule files first, as the compiled engine sums them
        sums = {"fit": 0.0, "bant": 0.0, "engagement": 0.0, "other": 0.0}
        for c in extra:
            sums[c.group if c.group in ("fit", "bant", "engagement") else "other"] += c.points
        errors: list[str] = []
        stages = self._stages
        with self._lock:
            hits, raised = self._fire(stages["scoring"], env)
            rules = ruleset.scoring.rules
            errors.extend(f"scoring:{rules[i].id}" for i in sorted(raised))
            contributions: list[Contribution] = []
            matched: list[str] = []
            for i in hits:
                hit = rules[i].contribution
                if hit is None:
                    continue
                contributions.append(hit)
                matched.append(hit.rule)
                sums[hit.group if hit.group in ("fit", "bant") else "engagement"] += hit.points
            fit, bant, engagement = sums["fit"], sums["bant"], sums["engagement"]
            total = fit + bant + engagement + sums["other"]
            contributions.extend(extra)
            env["score"] = total
            g = self._first(stages["grades"], env, [])
            grade = ruleset.grades[g][0] if g >= 0 else None
            env["fit"], env["bant"], env["engagement"] = fit, bant, engagement
            env["grade"], env["_hits"] = grade, set(matched)

            q = self._first(stages["qualification"], env, errors)
            status = DEFAULT_STATUS
            if q >= 0:
                qrule = ruleset.qualification.rules[q]
                status = qrule.status or DEFAULT_STATUS
                matched.append(qrule.id)
            env["status"] = status
            t = self._first(stages["territories"], env, errors)
            territory = ruleset.territories.rules[t].id if t >= 0 else None
            env["territory"] = territory
            s = self._first(stages["segments"], env, errors)
            segment = ruleset.segments.rules[s].id if s >= 0 else None
            env["segment"] = segment
            a = self._first(stages["assignment"], env, errors)
            route = _route(ruleset.assignment.rules[a], env) if a >= 0 else NO_RULE
            env["pool"] = route.target if route.kind == "pool" else None
            env["queue"] = route.target if route.kind == "queue" else None
            p = self._first(stages["sla"], env, errors)
        sla_policy = ruleset.sla.rules[p].id if p >= 0 else None
        for index, stage in ((t, ruleset.territories), (s, ruleset.segments),
                             (a, ruleset.assignment), (p, ruleset.sla)):
            if index >= 0:
                matched.append(stage.rules[index].id)
        return Evaluation(
            rules_version=ruleset.version,
            score=Score(total=total, grade=grade, fit=fit, bant=bant, engagement=engagement,
                        contributions=tuple(contributions)),
            status=status, territory=territory, segment=segment, route=route,
            sla_policy=sla_policy, matched=tuple(matched), decided=(q, t, s, a, p),
            errors=tuple(errors),
        )

    # -- introspection -------------------------------------------------------------------------
    def describe(self) -> dict[str, list[dict[str, Any]]]:
        """Per stage and rule: the durable-rules conditions and the values computed first."""
        out: dict[str, list[dict[str, Any]]] = {}
        for name, stage in self._stages.items():
            out[name] = [{"rule": r.rule_id,
                          "durable": [json.loads(ir.dumps(ir.emit(c, "k")))
                                      for c in r.conditions],
                          "computed": list(r.computed),
                          "slots": max((ir.expression_slots(c) for c in r.conditions),
                                       default=0)}
                         for r in stage.plan.rules]
        return out

    def facts_held(self) -> int:
        """Facts durable-rules holds right now, over all stages (0 between leads)."""
        total = 0
        with self._lock:
            for stage in self._stages.values():
                if stage.handle is None:
                    continue
                try:
                    total += len(json.loads(self._dr.get_facts(stage.handle, _SID)))
                except Exception:  # noqa: S112 - no state for the sid yet: nothing held
                    continue
        return total

    def close(self) -> None:
        """Free the durable-rules rulesets (also done when the engine is garbage-collected)."""
        self._finalizer()

    def __enter__(self) -> DurableEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _where(rule: CompiledRule) -> str:
    return f"{rule.file}:{rule.line}" if rule.line is not None else rule.file


def _route(rule: CompiledRule, env: dict[str, Any]) -> Route:
    if rule.route is not None:
        return rule.route
    return owner_route(rule, env["account_owner"], env["company_domain"])

