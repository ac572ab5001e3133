"""One generated function for a whole ruleset: every stage, in order, in a single frame.

Stage-by-stage evaluation pays, per stage, a call, a fresh load of every name it reads and
dict writes of its outputs for the next stage; for a 90-rule ruleset that glue costs as much
as the rules. Here the checked expressions of all stages are woven into one function:

* lead fields are read once, as attributes of the ``Lead`` (no dict of the lead is built);
* derived names (``email_domain``, ``region``...) unpacked from one tuple, ``now`` and the
  snapshot's mappings passed as arguments;
* stage outputs (``score``, ``status``, ``territory``...) are locals assigned by the code of
  their stage, and ``hit("id")`` is a local boolean set when that scoring rule matched;
* every ``matches()`` on one text field is answered by one RE2 call per value (MatchSet);
* ``contains``/``startswith``/``endswith`` of a text field and a literal are the ``str``
  operations themselves; ``matched`` is read off the contributions at the end;
* points are summed per group inline; runs of scoring rules over one field are memoised per
  value (router/engine/_alpha.py); first-match stages are ``if/elif`` chains whose outcome
  names come from constant tables;
* the function builds the ``Evaluation`` itself.

How the checked trees' names become the function's locals is router/engine/_fused_rewrite.py.

A rule that raises (only possible through a plugin function) counts as not matching and is
reported: scoring rules each run in their own ``try``; a first-match chain that raises runs
again rule by rule, each guarded. The result is exactly what the stage functions compute (a
test runs both on generated leads).
"""

from __future__ import annotations

import ast
import copy
import sys
from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any

import msgspec

from router.engine._alpha import group_call, group_function, single_key
from router.engine._ast import load as _name
from router.engine._ast import plugin_function
from router.engine._ast import store as _store
from router.engine._expr_compile import globals_for as _globals
from router.engine._expr_nodes import CheckedExpr
from router.engine._fused_rewrite import BOUND_GETS, Rewrite, batch_line, batch_local
from router.engine._regex import MatchSet
from router.engine.evaluate import DERIVED_VALUES
from router.engine.functions import Function
from router.engine.names import LEAD_FIELDS

__all__ = ["FusedFn", "Result", "fuse"]

FusedFn = Callable[..., Any]

# Names passed as arguments of their own (the rest of the derived names come in one tuple).
_ARGS = {"now": "_a_now", "_counts": "_a_counts", "_last": "_a_last",
         "account_owner": "_a_owner"}
_FIRST_STAGES = ("qualification", "territories", "segments", "assignment", "sla")


def _guarded(test: ast.expr, action: list[ast.stmt], stage: str, index: int) -> ast.stmt:
    on_error = ast.Expr(value=ast.Call(
        func=ast.Attribute(value=_name("_x"), attr="append", ctx=ast.Load()),
        args=[ast.Tuple(elts=[ast.Constant(value=stage), ast.Constant(value=index)],
                        ctx=ast.Load())], keywords=[]))
    return ast.Try(body=[ast.If(test=test, body=action, orelse=[])],
                   handlers=[ast.ExceptHandler(type=_name("Exception"), name=None,
                                               body=[on_error])],
                   orelse=[], finalbody=[])


class Result(msgspec.Struct, frozen=True, kw_only=True):
    """How the fused function builds its result (the caller's types and tables).

    ``rule_ids[stage]``: per first-match rule, the ids it adds to ``matched`` (a 1-tuple; the
    default, last, adds nothing); ``routes``: the Route of each assignment rule, None for
    account-owner rules (``owner_route(index, owner, company_domain)`` builds those), default
    last; ``errors(raised)`` turns (stage, index) pairs into "stage:id" strings.
    """

    make: Callable[..., Any]
    score: Callable[..., Any]
    rule_ids: Mapping[str, tuple[tuple[str, ...], ...]]
    routes: tuple[Any, ...]
    owner_route: Callable[[int, str, str | None], Any]
    errors: Callable[[list[tuple[str, int]]], tuple[str, ...]]


# The order in which _TAIL passes the Evaluation's fields.
_POSITIONAL = ("rules_version", "score", "status", "territory", "segment", "route",
               "sla_policy", "matched", "decided", "errors")
_TAIL = ast.parse("""
_o_route = _t_route[_i3]
if _o_route is None:
    _o_route = _owner_route(_i3, _a_owner, _d_company_domain)
return _Evaluation(  # by position: rules_version, score, status, territory, segment, route,
    _a_version,      # sla_policy, matched, decided, errors (see Evaluation)
    _Score(total=_o_score, grade=_o_grade, fit=_o_fit, bant=_o_bant, engagement=_o_eng,
           contributions=(*_m, *_a_extra)),
    _o_status, _o_territory, _o_segment, _o_route, _t_sla[_i4],
    (*_B_map(_rule_of, _m), *_t_id0[_i0], *_t_id1[_i1], *_t_id2[_i2], *_t_id3[_i3],
     *_t_id4[_i4]),
    (_i0, _i1, _i2, _i3, _i4), _errors(_x) if _x else ())
""").body


def fuse(stages: Mapping[str, list[CheckedExpr]], *, groups: list[str], points: list[float],
         scoring_ids: list[str], contributions: list[Any], outcomes: Mapping[str, tuple[Any, ...]],
         grades: tuple[tuple[str, float], ...], assignment_targets: tuple[tuple[Any, Any], ...],
         functions: Mapping[str, Function], result: Result) -> FusedFn:
    """Compile all stages into ``run(lead, derived_values, account_owner, now, counts, last,
    extra_fit, extra_bant, extra_engagement, extra_other, extra, version)`` (``derived_values``
    as router/engine/evaluate.py computes them), returning the evaluation built by
    ``result.make`` (see :class:`Result`); ``extra`` are contributions from outside the rules,
    already summed per group into the ``extra_*`` numbers.

    ``outcomes[stage]`` is the table of what each first-match rule yields, with the default at
    the end (index -1); ``assignment_targets`` gives (pool, queue) per assignment rule, default
    last, for SLA rules that read ``pool``/``queue``.
    """
    used_hits = {c.value for ex in (e for exprs in stages.values() for e in exprs)
                 for c in ast.walk(ex.node)
                 if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    hit_locals = {rid: f"_h{i}" for i, rid in enumerate(scoring_ids) if rid in used_hits}
    constants: dict[str, Any] = {}
    rewrite = Rewrite(hit_locals, constants, functions)
    extra_defs: list[ast.stmt] = []
    # The order matters: the rewrite numbers hoisted locals and MatchSet batches as it meets
    # them, scoring first, then the first-match stages in order.
    code = _scoring(stages["scoring"], rewrite, hit_locals, groups=groups, points=points,
                    scoring_ids=scoring_ids, contributions=contributions, grades=grades,
                    defs=extra_defs)
    code += _first_matches(stages, rewrite, outcomes, assignment_targets)
    body = _prologue(rewrite, code)
    body.extend(code)
    # the result, built here rather than by the caller: one expression instead of ~30 lines
    for n, stage in enumerate(_FIRST_STAGES):
        constants[f"_t_id{n}"] = result.rule_ids[stage]
    constants.update(_t_route=result.routes, _t_sla=outcomes["sla"], _Evaluation=result.make,
                     _Score=result.score, _owner_route=result.owner_route,
                     _errors=result.errors)
    if getattr(result.make, "__struct_fields__", _POSITIONAL) != _POSITIONAL:
        raise TypeError("the Evaluation's fields changed order: update _TAIL and _POSITIONAL")
    body.extend(copy.deepcopy(_TAIL))
    return _compile(body, extra_defs, functions, constants)


def _scoring(exprs: list[CheckedExpr], rewrite: Rewrite, hit_locals: dict[str, str], *,
             groups: list[str], points: list[float], scoring_ids: list[str],
             contributions: list[Any], grades: tuple[tuple[str, float], ...],
             defs: list[ast.stmt]) -> list[ast.stmt]:
    """The scoring stage: collect, points summed per group inline; runs of rules over one
    field memoised; then the total and the grade."""
    constants, functions = rewrite.constants, rewrite.functions
    scoring: list[tuple[ast.expr, ast.stmt, str | None, str]] = []
    code: list[ast.stmt] = [_store("_m", ast.List(elts=[], ctx=ast.Load()))]
    sums = {"fit": "_o_fit", "bant": "_o_bant", "engagement": "_o_eng"}
    for local, arg in (("_o_fit", "_a_fit"), ("_o_bant", "_a_bant"), ("_o_eng", "_a_eng")):
        code.append(_store(local, _name(arg)))
    for local in hit_locals.values():
        code.append(_store(local, ast.Constant(value=False)))
    for i, ex in enumerate(exprs):
        constants.update(ex.constants)
        key = f"_c{i}"
        constants[key] = contributions[i]
        # the matched ids are read off these contributions at the end (one map() call)
        action: list[ast.stmt] = [ast.Expr(value=ast.Call(
            func=ast.Attribute(value=_name("_m"), attr="append", ctx=ast.Load()),
            args=[_name(key)], keywords=[]))]
        action.append(ast.AugAssign(target=ast.Name(id=sums[groups[i]], ctx=ast.Store()),
                                    op=ast.Add(), value=ast.Constant(value=points[i])))
        hit = hit_locals.get(scoring_ids[i])
        if hit is not None:
            action.append(_store(hit, ast.Constant(value=True)))
        test = rewrite.visit(copy.deepcopy(ex.node))
        scoring.append((test, _guarded(test, action, "scoring", i), hit, sums[groups[i]]))
    code += _memoised_runs(scoring, rewrite, functions, constants, defs)
    total = ast.BinOp(left=ast.BinOp(left=ast.BinOp(left=_name("_o_fit"), op=ast.Add(),
                                                    right=_name("_o_bant")),
                                     op=ast.Add(), right=_name("_o_eng")),
                      op=ast.Add(), right=_name("_a_other"))
    code.append(_store("_o_score", total))
    grade: ast.expr = ast.Constant(value=None)
    for letter, threshold in reversed(grades):
        grade = ast.IfExp(test=ast.Compare(left=_name("_o_score"), ops=[ast.GtE()],
                                           comparators=[ast.Constant(value=threshold)]),
                          body=ast.Constant(value=letter), orelse=grade)
    code.append(_store("_o_grade", grade))
    return code


def _first_matches(stages: Mapping[str, list[CheckedExpr]], rewrite: Rewrite,
                   outcomes: Mapping[str, tuple[Any, ...]],
                   assignment_targets: tuple[tuple[Any, Any], ...]) -> list[ast.stmt]:
    """The first-match stages: `if _i < 0:` chains, outputs from constant tables."""
    constants = rewrite.constants
    code: list[ast.stmt] = []
    outputs = {"qualification": ["_o_status"], "territories": ["_o_territory"],
               "segments": ["_o_segment"], "assignment": ["_o_pool", "_o_queue"], "sla": []}
    for n, stage in enumerate(_FIRST_STAGES):
        index = f"_i{n}"
        tests = []
        for ex in stages[stage]:
            constants.update(ex.constants)
            tests.append(rewrite.visit(copy.deepcopy(ex.node)))
        code += _first_match(index, stage, tests, rewrite.functions)
        tables = [outcomes[stage]] if stage != "assignment" else [
            tuple(t[0] for t in assignment_targets), tuple(t[1] for t in assignment_targets)]
        for local, table in zip(outputs[stage], tables, strict=False):
            key = f"_t_{local}"
            constants[key] = table
            code.append(_store(local, ast.Subscript(value=_name(key), slice=_name(index),
                                                    ctx=ast.Load())))
    return code


def _prologue(rewrite: Rewrite, code: list[ast.stmt]) -> list[ast.stmt]:
    """The function's first lines: every name the rules (``code``) read, loaded once into the
    local the rewrite gave it, and the MatchSet answers ``code`` reads directly."""
    constants = rewrite.constants
    body: list[ast.stmt] = [_store("_x", ast.List(elts=[], ctx=ast.Load()))]
    # the tuple of derived_values(), unpacked into the locals the rules read them from
    derived = {k: rewrite.hoisted.get(k, f"_d_{k}") for k in DERIVED_VALUES}
    derived["company_domain"] = "_d_company_domain"  # the tail reads it for owner routes
    body.append(ast.Assign(targets=[ast.Tuple(
        elts=[ast.Name(id=n, ctx=ast.Store()) for n in derived.values()], ctx=ast.Store())],
        value=_name("_d")))
    for key, local in rewrite.hoisted.items():
        if key in LEAD_FIELDS or key == "attributes":
            value: ast.expr = ast.Attribute(value=_name("_l"), attr=key, ctx=ast.Load())
        elif key in _ARGS:
            value = _name(_ARGS[key])
        elif key in DERIVED_VALUES:
            if local == derived[key]:
                continue
            value = _name(derived[key])
        else:  # the checker admits no other names
            raise ValueError(f"no value for the name {key!r} in the fused function")
        body.append(_store(local, value))
    for key in sorted(rewrite.bound):
        body.append(_store(BOUND_GETS[key], ast.Attribute(value=_name(_ARGS[key]), attr="get",
                                                          ctx=ast.Load())))
    used = _loads(code)
    for n, (key, patterns) in enumerate(rewrite.batches.items()):
        match_set = MatchSet(patterns)
        constants[f"_bm{n}"], constants[f"_bt{n}"] = match_set.memo, match_set.test
        if batch_local(n) in used:  # else only memoised runs read it
            body.append(batch_line(n, rewrite.hoisted[key]))
    return body


def _compile(body: list[ast.stmt], defs: list[ast.stmt], functions: Mapping[str, Function],
             constants: dict[str, Any]) -> FusedFn:
    """``evaluate_ruleset(<the arguments fuse() documents>)`` with ``body``, after ``defs``
    (the memoised groups' functions), in a namespace of ``constants``."""
    args = ["_l", "_d", "_a_owner", "_a_now", "_a_counts", "_a_last", "_a_fit", "_a_bant", "_a_eng",
            "_a_other", "_a_extra", "_a_version"]
    fdef = ast.FunctionDef(
        name="evaluate_ruleset",
        args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=a) for a in args], vararg=None,
                           kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[]),
        body=body, decorator_list=[], returns=None)
    if sys.version_info >= (3, 12):
        fdef.type_params = []
    module = ast.Module(body=[*defs, fdef], type_ignores=[])
    ast.fix_missing_locations(module)
    compiled = compile(module, "<rules>", "exec")
    namespace = _globals(functions, constants)
    namespace.update(_B_tuple=tuple, _B_len=len, _B_map=map, _rule_of=attrgetter("rule"))
    # Runs our own code object (built from the checked, rewritten trees above), which defines
    # the functions in `namespace`: no rule text is evaluated.
    exec(compiled, namespace)  # noqa: S102
    fn: FusedFn = namespace["evaluate_ruleset"]
    return fn


def _first_match(index: str, stage: str, tests: list[ast.expr],
                 functions: Mapping[str, Function]) -> list[ast.stmt]:
    """``index`` = the first rule whose test holds, else -1.

    Each rule must run inside its own ``try`` (a rule that raises counts as not matching and
    is reported), but per-rule guards cost a check of ``index`` for every rule after the match.
    So the stage runs as one plain ``if/elif`` chain, and only if something in it raises does
    it run again rule by rule, guarded. Rules calling plugin functions (which may have side
    effects, and so must not run twice) always take the guarded form.
    """
    guarded: list[ast.stmt] = [_store(index, ast.Constant(value=-1))]
    for i, test in enumerate(tests):
        rule = _guarded(copy.deepcopy(test), [_store(index, ast.Constant(value=i))], stage, i)
        guarded.append(rule if i == 0 else ast.If(
            test=ast.Compare(left=_name(index), ops=[ast.Lt()],
                             comparators=[ast.Constant(value=0)]),
            body=[rule], orelse=[]))
    plugin = any(isinstance(n, ast.Name) and n.id.startswith("_fn_")
                 and plugin_function(n.id, functions)
                 for test in tests for n in ast.walk(test))
    if plugin or not tests:
        return guarded
    chain: list[ast.stmt] = [_store(index, ast.Constant(value=-1))]
    for i in reversed(range(len(tests))):
        chain = [ast.If(test=tests[i], body=[_store(index, ast.Constant(value=i))],
                        orelse=chain)]
    return [ast.Try(body=chain,
                    handlers=[ast.ExceptHandler(type=_name("Exception"), name=None,
                                                body=guarded)],
                    orelse=[], finalbody=[])]


def _loads(nodes: list[ast.stmt]) -> set[str]:
    return {n.id for stmt in nodes for n in ast.walk(stmt)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _memoised_runs(scoring: list[tuple[ast.expr, ast.stmt, str | None, str]],
                   rewrite: Rewrite, functions: Mapping[str, Function],
                   constants: dict[str, Any], defs: list[ast.stmt]) -> list[ast.stmt]:
    """The scoring blocks, with each run of 2+ consecutive rules over one field replaced by a
    memoised group (router/engine/_alpha.py); the group functions are appended to ``defs``."""
    locals_ = {local: key for key, local in rewrite.hoisted.items()}
    batches = {batch_local(i): key for i, key in enumerate(rewrite.batches)}
    keys = [single_key(test, locals_, batches, functions) for test, *_ in scoring]
    out: list[ast.stmt] = []
    i = 0
    while i < len(scoring):
        j = i + 1
        while keys[i] is not None and j < len(scoring) and keys[j] == keys[i]:
            j += 1
        key = keys[i]
        if key is None or j - i < 2:
            out += [block for _, block, _, _ in scoring[i:j]]
            i = j
            continue
        run = scoring[i:j]
        n = len(defs)
        local = rewrite.hoisted[key]
        blocks = [block for _, block, _, _ in run]
        hits = [hit for _, _, hit, _ in run if hit is not None]
        sums = sorted({total for *_, total in run})
        used = _loads(blocks)
        lines = [batch_line(b, local) for b, k in enumerate(rewrite.batches)
                 if k == key and batch_local(b) in used]
        constants[f"_gm{n}"] = {}
        defs.append(group_function(n, local, lines, blocks, hits))
        out += group_call(n, local, sums, hits)
        i = j
    return out
