"""The rule expression language (router.engine.expr): constructs, null semantics, functions,
stage visibility, domain checks and the type errors reported at load.

The abuse corpus lives in test_expr_abuse.py and the property test against a reference
interpreter in test_expr_property.py.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from router.engine.expr import CheckedExpr, ExprError, check, compile_stage
from router.engine.functions import ANY, BOOL, BUILTINS, Function
from router.engine.names import scope_for

NOW = datetime.datetime(2026, 3, 10, 12, 0, tzinfo=datetime.UTC)
CTX: dict[str, Any] = dict(
    grades=frozenset({"A", "B", "C", "D"}),
    territories=frozenset({"emea", "na-west"}),
    segments=frozenset({"enterprise", "smb"}),
    pools=frozenset({"na-ent"}),
    reps=frozenset({"alice", "bob"}),
    hit_ids=frozenset({"fit.big", "bant.authority"}),
)


def scope(stage: str = "sla", functions: dict[str, Function] | None = None) -> Any:
    return scope_for(stage, functions=functions or BUILTINS, **CTX)


def env(**values: Any) -> dict[str, Any]:
    """Every name of the last stage present and null, then ``values``."""
    e: dict[str, Any] = dict.fromkeys(scope().names)
    e.update(attributes={}, now=NOW, _counts={}, _last={}, _hits=set())
    e.update(values)
    return e


def ok(source: str, stage: str = "sla") -> CheckedExpr:
    return check(source, scope(stage))


def refused(source: str, stage: str = "sla", functions: dict[str, Function] | None = None
            ) -> ExprError:
    with pytest.raises(ExprError) as info:
        check(source, scope(stage, functions))
    assert info.value.message
    assert info.value.fix
    return info.value


def ev(source: str, functions: dict[str, Function] | None = None, **values: Any) -> bool:
    """Compile ``source`` as a one-rule stage and evaluate it; it must not raise."""
    fns = functions or BUILTINS
    fn = compile_stage("t", "collect", [check(source, scope("sla", fns))], fns)
    matched, raised = fn(env(**values))
    assert raised == []
    return matched == [0]


# -- null semantics ---------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["employees > 5", "employees >= 5", "employees < 5",
                                    "employees <= 5", "5 < employees", "employees == 5",
                                    "title < \"m\"", "employees + 1 > 0", "len(title) >= 0"])
def test_missing_field_is_null_and_comparisons_with_it_are_false(source: str) -> None:
    assert not ev(source)


def test_missing_field_equals_null_and_not_equal_to_null_tests_presence() -> None:
    assert ev("employees == null")
    assert not ev("employees != null")
    assert ev("null == employees")
    assert not ev("employees == null", employees=0)
    assert ev("employees != null", employees=0)
    assert ev("title == None") and ev("title != None", title="x")


def test_not_equal_with_a_missing_value_is_false() -> None:
    # docs/rules.md: "a missing value compares false" — `!=` and `not in` included; presence is
    # tested with `== null` / `!= null`, and an explicit `not (...)` still negates.
    assert not ev("employees != 5")
    assert not ev('title != "VP"')
    assert not ev("attributes.x != 1")
    assert not ev('country not in ["US", "CA"]')
    assert ev('not (country in ["US", "CA"])')
    assert ev("employees != 5", employees=6) and not ev("employees != 5", employees=5)
    assert ev('country not in ["US", "CA"]', country="DE")


def test_not_of_a_false_comparison_is_true_even_for_null() -> None:
    assert ev("not employees > 5")
    assert ev("not (employees <= 5)")
    assert not ev("not employees > 5", employees=10)


def test_text_membership_with_a_missing_text_is_false_both_ways() -> None:
    assert not ev('"vp" in title') and not ev('"vp" not in title')
    assert ev('"vp" not in title', title="CTO") and ev('"vp" in title', title="svp")


def test_a_boolean_field_is_not_found_among_numbers() -> None:
    assert not ev('consent in [1, "x"]', consent=True)
    assert ev('consent in [true, 1]', consent=True)


def test_a_missing_value_is_neither_in_nor_not_in_a_list() -> None:
    # like every comparison with a missing value, both are false (unless the list holds null)
    assert not ev('country not in ["US", "CA"]')
    assert not ev('country in ["US", "CA"]')
    assert ev("attributes.x in [1, null]")


def test_ordering_with_incomparable_kinds_is_false() -> None:
    for value in ("10", True, [1]):
        assert not ev("attributes.x > 1", attributes={"x": value})
        assert not ev("attributes.x < 1", attributes={"x": value})
    assert not ev("attributes.x < title", attributes={"x": 1}, title="a")
    naive = datetime.datetime(2026, 1, 1)
    assert not ev('last("x") < now', _last={"x": naive})


def test_booleans_cannot_be_ordered_at_runtime_either() -> None:
    # `consent > false` is refused at load; a boolean attribute must not order against numbers.
    assert not ev("attributes.x > 0", attributes={"x": True})
    assert not ev("attributes.x >= 1", attributes={"x": True})
    assert not ev("attributes.x > attributes.y", attributes={"x": True, "y": False})


def test_boolean_attribute_does_not_equal_a_number() -> None:
    # bool and number are different kinds at load (`consent == 1` is refused); at runtime a
    # loosely typed value must follow the same rule, although Python says True == 1.
    assert not ev("attributes.x == 1", attributes={"x": True})
    assert ev("attributes.x != 1", attributes={"x": True})
    assert not ev("attributes.x in [1, 2]", attributes={"x": True})
    assert ev("attributes.x in [1, 2]", attributes={"x": 1})
    assert ev("attributes.x == true", attributes={"x": True})
    assert not ev("attributes.x == true", attributes={"x": 1})
    assert ev("attributes.x == 1.0", attributes={"x": 1})
    assert ev("employees in [10, 20]", employees=20)


@pytest.mark.parametrize(("source", "values"), [
    ("employees + 1 == null", {}),
    ("employees - 1 == null", {}),
    ("-employees == null", {}),
    ("+employees == null", {}),
    ("employees / 0 == null", {"employees": 10}),
    ("employees // 0 == null", {"employees": 10}),
    ("employees % 0 == null", {"employees": 10}),
    ("budget / 0.0 == null", {"budget": 1.0}),
    ("attributes.x * 2 == null", {"attributes": {"x": "ab"}}),
    ("attributes.x + 1 == null", {"attributes": {"x": "1"}}),
    ("attributes.x - 1 == null", {"attributes": {"x": True}}),
    ('attributes.x + "a" == null', {"attributes": {"x": 1}}),
    ("-attributes.x == null", {"attributes": {"x": "1"}}),
])
def test_arithmetic_with_null_mismatched_kinds_or_division_by_zero_is_null(
        source: str, values: dict[str, Any]) -> None:
    assert ev(source, **values)


def test_arithmetic_overflow_is_null_not_an_error() -> None:
    big = " * ".join(["1000000000000000"] * 21)  # 10**315: too large for a float
    assert ev(f"({big}) / 3 == null")
    assert ev(f"({big}) + 0.5 == null")
    assert ev("attributes.x * attributes.x * attributes.x * attributes.x * attributes.x "
              "* attributes.x * 1.0 == null", attributes={"x": 10**60})


def test_string_times_number_is_refused_at_load() -> None:
    err = refused('title * 2 == "aa"')
    assert err.message == "cannot apply this arithmetic to text and number"
    assert err.fix == "arithmetic works on numbers (and + joins text)"
    assert refused('"a" * 3 == "aaa"').message.startswith("cannot apply this arithmetic")


# -- operators --------------------------------------------------------------------------------

def test_arithmetic_on_numbers_and_text_concatenation() -> None:
    assert ev("employees * 2 + 1 == 21", employees=10)
    assert ev("employees / 4 == 2.5", employees=10)
    assert ev("employees // 4 == 2 and employees % 4 == 2", employees=10)
    assert ev("budget - employees == 0.5", budget=10.5, employees=10)
    assert ev("-employees < 0 and +employees > 0 and --employees == 10", employees=10)
    assert ev('first_name + " " + last_name == "Ada Lovelace"', first_name="Ada",
              last_name="Lovelace")


def test_and_or_use_truthiness_and_return_operands() -> None:
    assert ev("(employees or 5) == 5", employees=0)
    assert ev("(employees or 5) == 5")
    assert ev("(employees and 5) == 0", employees=0)
    assert ev("title and employees", title="x", employees=3)
    assert not ev("title and employees", title="", employees=3)
    assert not ev("attributes.x", attributes={"x": 0})
    assert ev("attributes.x", attributes={"x": "y"})
    assert ev("not attributes.x", attributes={"x": ""})


def test_chained_comparisons() -> None:
    assert ev("10 <= employees < 100", employees=10)
    assert not ev("10 <= employees < 100", employees=100)
    assert not ev("10 <= employees < 100")
    assert ev("1 < 2 < 3 <= 3 != 4")
    assert ev('"a" in title in ["abc", "xyz"]', title="abc")


def test_conditional_expression() -> None:
    assert ev('(employees if country == "US" else budget) > 5', country="US", employees=6)
    assert not ev('(employees if country == "US" else budget) > 5', country="DE", employees=6)
    assert ev('(1 if consent else 0) == 0')


def test_constants_in_python_and_json_spelling() -> None:
    assert ev("true") and ev("True") and not ev("false") and not ev("False")
    assert not ev("null") and not ev("None")
    assert ev("1 == 1.0") and ev('"a" == "a"')


def test_membership_in_lists_and_in_text() -> None:
    assert ev('country in ["US", "CA"]', country="CA")
    assert ev("employees in (1, 2, 3)", employees=2)
    assert ev("employees not in [1, 2, 3]", employees=4)
    assert ev("employees in [-1]", employees=-1)
    assert not ev("employees in []", employees=1)
    assert ev('"vp" in lower(title)', title="SVP Sales")
    assert not ev('"vp" in title')
    assert not ev("title in attributes.x", title="a", attributes={"x": 5})


def test_a_number_is_not_found_among_booleans_in_a_mixed_list() -> None:
    # Python says 1 == True; the rule language does not (found by the property test)
    assert not ev("employees in [0, true]", employees=1)
    assert ev("employees in [0, true]", employees=0)
    assert not ev('count("webinar", days=30) in [0, true]',
                  _counts={("webinar", 30): 1})


def test_custom_fields_through_attributes() -> None:
    attrs = {"utm_source": "google", "a b": 3, "n": 2.5}
    assert ev('attributes.utm_source == "google"', attributes=attrs)
    assert ev('attributes["a b"] == 3', attributes=attrs)
    assert ev("attributes.n * 2 == 5", attributes=attrs)
    assert ev("attributes.missing == null", attributes=attrs)
    assert ev('attributes["utm_source"] != null and attributes._private == null',
              attributes=attrs)


# -- functions --------------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "values", "expected"), [
    ('matches(title, "(?i)\\\\bvp\\\\b")', {"title": "VP Sales"}, True),
    ('matches(title, "(?i)\\\\bvp\\\\b")', {"title": "mvp"}, False),
    ('matches(title, "x")', {}, False),
    ('matches(attributes.x, "1")', {"attributes": {"x": 1}}, False),
    ('domain(email) == "acme.com"', {"email": "jo@acme.com", "email_domain": "acme.com"}, True),
    ('domain(lower(email)) == "acme.com"', {"email": "jo@www.acme.com"}, True),
    ('domain(attributes.site) == "acme.com"', {"attributes": {"site": "https://www.acme.com/x"}},
     True),
    ("domain(email) == null", {}, True),
    ("is_free_email(email)", {"email": "jo@gmail.com", "free_email": True}, True),
    ("is_free_email(lower(email))", {"email": "jo@gmail.com"}, True),
    ("is_free_email(lower(email))", {"email": "jo@acme.com"}, False),
    ("is_free_email(attributes.x)", {"attributes": {"x": 5}}, False),
    ("is_disposable_email(lower(email))", {"email": "x@mailinator.com"}, True),
    ("is_disposable_email(lower(email))", {}, False),
    ('region(country) == "EMEA"', {"country": "DE", "region": "EMEA"}, True),
    ('region(lower(country)) == "APAC"', {"country": "JP"}, True),
    ("region(state) == null", {"state": "ZZ"}, True),
    ('lower(title) == "ceo"', {"title": "CEO"}, True),
    ('upper(title) == "CEO"', {"title": "ceo"}, True),
    ("lower(title) == null and upper(attributes.x) == null", {"attributes": {"x": 1}}, True),
    ('contains(title, "Sales")', {"title": "VP Sales"}, True),
    ('contains(title, "sales")', {"title": "VP Sales"}, False),
    ('contains(title, "x")', {}, False),
    ('startswith(postal_code, "94")', {"postal_code": "94107"}, True),
    ('endswith(email_domain, ".edu")', {"email_domain": "mit.edu"}, True),
    ('startswith(title, "x") or endswith(title, "x")', {}, False),
    ("len(title) == 3", {"title": "CEO"}, True),
    ("len(title) == null and len(attributes.n) == null", {"attributes": {"n": 5}}, True),
    ('count("demo", days=7) >= 2', {"_counts": {("demo", 7): 2}}, True),
    ('count("demo", days=7) == 0', {"_counts": {("demo", 30): 2}}, True),
    ('last("demo") == null', {}, True),
    ('days_since(last("demo")) == 2.5',
     {"_last": {"demo": NOW - datetime.timedelta(days=2, hours=12)}}, True),
    ('days_since(last("demo")) == null', {}, True),
    ('days_since(last("demo")) == 1',
     {"_last": {"demo": datetime.datetime(2026, 3, 9, 12, 0)}}, True),
    ("days_since(now) == 0", {}, True),
    ('hit("fit.big") and not hit("bant.authority")', {"_hits": {"fit.big"}}, True),
])
def test_functions(source: str, values: dict[str, Any], expected: bool) -> None:
    assert ev(source, **values) is expected


def test_derived_fast_paths_agree_with_the_functions() -> None:
    # is_free_email(email) reads the per-lead derived value; lower(email) calls the function.
    from leadrouter_sdk import Lead

    from router.engine.evaluate import Snapshot, build_env

    fn_names = ("is_free_email", "is_disposable_email", "domain", "region")
    for email in ("bob@gmail.com", "bob@www.gmail.com", "x@mailinator.com", "a@acme.com"):
        lead = Lead(email=email, country="DE")
        e = build_env(lead, Snapshot(), NOW)
        for name in fn_names:
            arg = "country" if name == "region" else "email"
            direct = compile_stage("t", "collect", [ok(f"{name}({arg}) == attributes.want")],
                                   BUILTINS)
            want = BUILTINS[name].impl(e[arg])  # type: ignore[misc]
            assert direct({**e, "attributes": {"want": want}})[0] == [0], (name, email)


def test_functions_are_checked_at_load() -> None:
    err = refused("lower(employees) == null")
    assert err.message == "lower() expects text, got employees (number)"
    assert err.fix == 'example: lower(industry) == "saas"'
    assert refused('matches(employees, "1")').message.startswith("matches() expects text")
    assert refused("matches(title, title)").message == "matches() needs a text literal here"
    err = refused('matches(title, "(")')
    assert err.message.startswith("invalid regular expression")
    assert err.fix == "RE2 syntax: no backreferences or lookaround"
    assert refused("days_since(title) > 1").message == \
        "days_since() expects a datetime, got text"
    err = refused("lowr(title) == null")
    assert (err.message, err.fix) == ("unknown function `lowr`", "did you mean `lower`?")
    err = refused("lower(title, title) == null")
    assert err.message == "lower() takes 1 argument(s), got 2"
    err = refused('count("demo") > 1')
    assert err.message == "count() needs days="
    assert err.fix == 'example: count("pricing_page_viewed", days=7) >= 2'
    assert refused('count("d", days=7, weeks=1) > 1').message == "count() has no option `weeks`"
    for days in ("0", "366", "9999", "1.5", "true", "x", "-1"):
        err = refused(f'count("d", days={days}) > 1')
        assert err.message == "count(): days must be a whole number from 1 to 365"


def test_count_and_last_record_what_state_the_rule_reads() -> None:
    checked = ok('count("demo", days=7) > 1 or count("demo", days=30) > 2 '
                 'or last("webinar") != null')
    assert checked.windows == {("demo", 7), ("demo", 30)}
    assert checked.last_events == {"webinar"}


# -- stages and domains -----------------------------------------------------------------------

@pytest.mark.parametrize(("name", "stage", "producer"), [
    ("score", "scoring", "scoring"), ("grade", "scoring", "scoring"),
    ("fit", "scoring", "scoring"), ("status", "qualification", "qualification"),
    ("territory", "qualification", "territories"), ("territory", "territories", "territories"),
    ("segment", "territories", "segments"), ("pool", "segments", "assignment"),
    ("queue", "assignment", "assignment"),
])
def test_stage_outputs_are_only_visible_in_later_stages(name: str, stage: str,
                                                         producer: str) -> None:
    err = refused(f"{name} != null", stage)
    assert err.message == f"`{name}` is not known yet in {stage} rules: the {producer} " \
                          "stage computes it"
    assert err.fix == f"use `{name}` only in stages after {producer}"


def test_stage_outputs_visible_after_their_stage() -> None:
    ok("score > 1 and grade == \"A\"", "qualification")
    ok('status == "sql" and territory == "emea"', "segments")
    ok('segment == "smb" and pool == "na-ent" and queue != null', "sla")


def test_hit_only_after_scoring_and_only_for_existing_ids() -> None:
    err = refused('hit("fit.big")', "scoring")
    assert err.message == "hit() is not available in scoring rules"
    err = refused('hit("fit.bgi")', "qualification")
    assert err.message == 'hit("fit.bgi"): no scoring rule has that id'
    assert err.fix == 'did you mean "fit.big"?'
    assert refused("hit(title)").message == "hit() needs a text literal here"
    ok('hit("bant.authority")', "qualification")


@pytest.mark.parametrize(("source", "message", "fix"), [
    ('country == "USA"', '"USA" is not a known country', 'did you mean "US"?'),
    ('"USA" == country', '"USA" is not a known country', 'did you mean "US"?'),
    ('country in ["US", "UK"]', '"UK" is not a known country', None),
    ('status == "qualified"', '"qualified" is not a known status', None),
    ('status == "sqll"', '"sqll" is not a known status', 'did you mean "sql"?'),
    ('grade == "E"', '"E" is not a known grade', "known: A, B, C, D"),
    ('territory == "emae"', '"emae" is not a known territory', 'did you mean "emea"?'),
    ('segment == "mid"', '"mid" is not a known segment', "known: enterprise, smb"),
    ('pool == "na-smb"', '"na-smb" is not a known pool', "known: na-ent"),
    ('region == "EMAE"', '"EMAE" is not a known region', 'did you mean "EMEA"?'),
    ('region(country) == "emea"', '"emea" is not a known region()',
     "known: APAC, EMEA, LATAM, NA"),
    ('account_owner == "bobby"', '"bobby" is not a known account_owner', 'did you mean "bob"?'),
])
def test_domain_checks_refuse_unknown_literals(source: str, message: str,
                                               fix: str | None) -> None:
    err = refused(source)
    assert err.message == message
    if fix is not None:
        assert err.fix == fix


# -- type errors and refusals at load ---------------------------------------------------------

@pytest.mark.parametrize(("source", "message", "fix"), [
    ('employees >= "1000"', 'employees is number but "1000" is text',
     "compare values of the same kind (numbers without quotes)"),
    ("title > 1", "title is text but 1 is number",
     "compare values of the same kind (numbers without quotes)"),
    ("consent == 1", "consent is boolean but 1 is number",
     "compare values of the same kind (numbers without quotes)"),
    ("now == 1", "now is datetime but 1 is number",
     "compare values of the same kind (numbers without quotes)"),
    ("consent > false", "true/false values cannot be ordered", "use == or !="),
    ("employees", "the condition is a number, not true/false",
     "compare it, e.g. `employees != null`"),
    ("title", "the condition is a text, not true/false", "compare it, e.g. `title != null`"),
    ('count("x", days=7)', "the condition is a number, not true/false",
     'compare it, e.g. `count("x") != null`'),
    ('employees in ["1"]', "employees is number but the list holds text",
     "make the list items the same kind"),
    ("employees in [title]", "lists may only hold literals",
     'write ["US", "CA"], not names or calls'),
    ("employees in employees", "`in` needs a list or a text on its right, not number",
     'write `x in ["a", "b"]` or `"part" in text`'),
    ("-title == null", "title is text, not a number", "use a numeric field or literal"),
    ("employees + title == null", "cannot apply this arithmetic to number and text",
     "arithmetic works on numbers (and + joins text)"),
    ("x > 1", "unknown name `x`", "use a lead field (see docs/rules.md) or attributes.<name>"),
    ("employes > 1", "unknown name `employes`", "did you mean `employees`?"),
    ("attributes == null", "`attributes` is a collection",
     "write attributes.<name> for one custom field"),
    ("employees > 1 and", "syntax error: invalid syntax",
     'expressions use Python syntax, e.g. employees >= 100 and country == "US"'),
    ("", "empty expression", 'write a condition, or "true" to always match'),
])
def test_type_and_name_errors_at_load(source: str, message: str, fix: str) -> None:
    err = refused(source)
    assert (err.message, err.fix) == (message, fix)


def test_error_position_points_at_the_culprit() -> None:
    err = refused("employees > 1 and (title == 2)")
    assert (err.line, err.col) == (1, 19)
    err = refused("(employees > 1 and\n employes > 2)")
    assert (err.line, err.col) == (2, 1)


# -- compiled stages --------------------------------------------------------------------------

def _stage(mode: str, sources: list[str], functions: dict[str, Function] = BUILTINS) -> Any:
    exprs = [check(s, scope("sla", functions), prefix=str(i)) for i, s in enumerate(sources)]
    return compile_stage("t", mode, exprs, functions)


def test_collect_mode_returns_every_match_and_first_mode_the_first() -> None:
    sources = ["employees > 10", "employees > 100", "title != null", "employees > 1"]
    assert _stage("collect", sources)(env(employees=50)) == ([0, 3], [])
    assert _stage("first", sources)(env(employees=50)) == (0, [])
    assert _stage("first", sources)(env(employees=5, title="x")) == (2, [])
    assert _stage("first", sources)(env()) == (-1, [])
    assert _stage("collect", [])(env()) == ([], [])
    assert _stage("first", [])(env()) == (-1, [])


def test_constants_of_several_rules_do_not_collide() -> None:
    sources = ['country in ["US"]', 'country in ["DE"]', 'matches(title, "a")',
               'matches(title, "b")']
    assert _stage("collect", sources)(env(country="DE", title="b")) == ([1, 3], [])


def _boom(value: Any) -> bool:
    raise RuntimeError("plugin failed")


BOOM = {**BUILTINS, "boom": Function(name="boom", impl=_boom, params=(ANY,), returns=BOOL,
                                     doc="raises", example="boom(title)")}


def test_a_raising_function_counts_as_not_matching_and_is_reported() -> None:
    sources = ["boom(title)", "true", "boom(title) or true"]
    assert _stage("collect", sources, BOOM)(env()) == ([1], [0, 2])
    assert _stage("first", sources, BOOM)(env()) == (1, [0])
    assert _stage("first", ["not boom(title)", "false"], BOOM)(env()) == (-1, [0])


@pytest.mark.parametrize(("source", "expected"), [
    ('"x" == null', False), ('"x" != null', True), ("1 == null", False),
    ("null == 1", False), ("null == null", True), ("null != null", False),
])
def test_literal_compared_with_null_compiles_without_warnings(source: str,
                                                              expected: bool) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # `"x" is None` would be a SyntaxWarning (an error here)
        assert ev(source) is expected
