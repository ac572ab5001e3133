"""Injection and abuse corpus: every entry must be refused at load with an ExprError (never any
other exception), a message and a fix, within the checker's own limits of work (source length
before parsing, nodes and depth while checking), whatever this machine's speed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from router.engine import expr as expr_module
from router.engine.expr import MAX_NODES, MAX_SOURCE, ExprError, check, compile_stage
from router.engine.functions import BUILTINS
from router.engine.names import scope_for

SCOPE = scope_for("qualification", functions=BUILTINS, grades=frozenset({"A"}),
                  territories=frozenset(), segments=frozenset(), pools=frozenset(),
                  reps=frozenset(), hit_ids=frozenset({"fit.big"}))

CORPUS: list[tuple[str, str]] = [
    # code execution / introspection
    ("import", '__import__("os")'),
    ("import-call", '__import__("os").system("id")'),
    ("fullwidth-import", '\uff3f\uff3fimport\uff3f\uff3f("os")'),  # NFKC → __import__
    ("tuple-class", "().__class__"),
    ("subclasses", "().__class__.__bases__[0].__subclasses__()"),
    ("field-class", "title.__class__"),
    ("method-call", "title.upper() == \"X\""),
    ("len-dunder", "(title).__len__() > 1"),
    ("getattr", 'getattr(title, "__class__")'),
    ("open", 'open("/etc/passwd")'),
    ("exec", 'exec("import os")'),
    ("eval", 'eval("1")'),
    ("compile", 'compile("1", "x", "eval")'),
    ("globals", "globals()"),
    ("print", "print(1)"),
    ("builtins-name", "__builtins__"),
    ("builtins-index", '__builtins__["eval"]("1")'),
    ("debug", "__debug__"),
    ("env-name", "_e"),
    ("env-index", '_e["title"] == "x"'),
    ("constant-name", "_k0_0"),
    ("runtime-helper", "_lt(1, 2)"),
    ("function-global", "_fn_lower(title) == null"),
    ("exception", "Exception"),
    ("bool-class", "True.__class__"),
    # forbidden constructs
    ("lambda", "lambda: 1"),
    ("lambda-call", "(lambda x: x)(1)"),
    ("list-comp", "[x for x in title]"),
    ("set-comp", "{x for x in title}"),
    ("dict-comp", "{x: 1 for x in title}"),
    ("genexp", "any(x for x in title)"),
    ("walrus", "(x := 1)"),
    ("fstring", 'f"{title}" == "x"'),
    ("fstring-dunder", 'f"{title.__class__}" == "x"'),
    ("await", "await title"),
    ("yield", "(yield title)"),
    ("starred-list", "[*title]"),
    ("starred-call", "lower(*title) == null"),
    ("kwargs-call", "lower(**title) == null"),
    ("dict-literal", '{"a": 1} == attributes.x'),
    ("set-literal", "employees in {1, 2}"),
    ("list-outside-in", "[1, 2] == attributes.x"),
    ("tuple-outside-in", "(1, 2) == attributes.x"),
    ("bytes", 'b"x" == title'),
    ("complex", "1j == 1"),
    ("ellipsis", "... == 1"),
    ("call-result", 'count("x", days=7)(1)'),
    ("statement", "1\nimport os"),
    ("semicolon", "true; true"),
    # resource exhaustion
    ("pow", "2 ** 10 > 1"),
    ("pow-tower", "10**10**10 > 1"),
    ("str-times-pow", '"a" * 10**9 == title'),
    ("list-times-pow", "[1]*10**9"),
    ("str-times-int", '"a" * 1000000 == title'),
    ("text-field-times", "title * 1000000 == title"),
    ("nested-not", "not " * 200 + "true"),
    ("nested-parens", "(" * 100 + "1" + " + 1)" * 100 + " > 1"),
    ("parser-nesting", "(" * 300 + "1" + ")" * 300 + " > 0"),
    ("nested-lists", "employees in " + "[" * 250 + "]" * 250),
    ("nested-unary", "-" * 600 + "1 > 0"),
    ("or-chain-5000", " or ".join(["true"] * 5000)),
    ("or-chain-nodes", " or ".join(["fit>1"] * 140)),
    ("compare-chain", "1<" * 500 + "1"),
    ("huge-int", "1" + "0" * 30 + " > employees"),
    ("huge-int-digits", "1" * 5000 + " > 1"),
    ("huge-float", "1e400 > employees"),
    ("huge-string", '"' + "a" * 1500 + '" == title'),
    ("long-source", 'title == "' + "a" * 2000 + '"'),
    ("long-attribute", "attributes." + "a" * 65 + " == 1"),
    # subscripts and attributes
    ("field-index", 'title[0] == "a"'),
    ("field-slice", 'title[0:1] == "a"'),
    ("attributes-int-index", "attributes[0] == 1"),
    ("attributes-name-index", "attributes[title] == 1"),
    ("attributes-nested", "attributes.x.y == 1"),
    ("attributes-class", "attributes.__class__"),
    ("attributes-dict", "attributes.__dict__ == null"),
    ("attributes-class-index", 'attributes["__class__"] == null'),
    ("attributes-bare", "attributes"),
    # operators
    ("is", "title is None"),
    ("is-not", "title is not None"),
    ("bit-and", "employees & 1"),
    ("bit-or", "employees | 1"),
    ("bit-xor", "employees ^ 1"),
    ("invert", "~employees"),
    ("shift", "employees << 1"),
    ("rshift", "employees >> 1"),
    ("matmul", "employees @ 1"),
    # functions
    ("regex-not-literal", "matches(title, title)"),
    ("regex-invalid", 'matches(title, "(")'),
    ("regex-backreference", 'matches(title, "(a)\\\\1")'),
    ("regex-lookahead", 'matches(title, "(?=a)b")'),
    ("unknown-function", "system(title)"),
    ("arity-none", "lower() == null"),
    ("arity-two", "lower(title, title) == null"),
    ("unknown-keyword", "lower(title, x=1) == null"),
    ("count-extra-keyword", 'count("x", days=7, x=1) > 1'),
    ("count-days-0", 'count("x", days=0) > 1'),
    ("count-days-9999", 'count("x", days=9999) > 1'),
    ("count-days-name", 'count("x", days=employees) > 1'),
    ("count-event-name", "count(title, days=7) > 1"),
    ("hit-unknown", 'hit("nope")'),
    ("hit-name", "hit(title)"),
    # malformed source
    ("null-byte", "title == 1\x00"),
    ("null-byte-only", "\x00"),
    ("empty", ""),
    ("blank", "   \n\t "),
    ("syntax", "employees >"),
    ("bare-not", "not"),
    ("not-a-string", None),  # type: ignore[list-item]
]


def test_corpus_is_large() -> None:
    assert len(CORPUS) >= 40
    assert len({name for name, _ in CORPUS}) == len(CORPUS)


@pytest.fixture
def builders(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every checker ``check()`` builds, to read how many nodes it visited (its work)."""
    made: list[Any] = []

    class Counted(expr_module._Builder):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(expr_module, "_Builder", Counted)
    yield made


@pytest.mark.parametrize(("source"), [s for _, s in CORPUS], ids=[n for n, _ in CORPUS])
def test_refused_at_load(source: Any, builders: list[Any]) -> None:
    try:
        check(source, SCOPE)
    except ExprError as exc:
        assert exc.message and isinstance(exc.message, str)
        assert exc.fix and isinstance(exc.fix, str)
        assert exc.line >= 1 and exc.col >= 0
    except BaseException as exc:  # any other exception type is a failure of the checker
        pytest.fail(f"{type(exc).__name__} instead of ExprError: {exc!r}")
    else:
        pytest.fail("accepted")
    # Bounded by work, not by this machine's speed: a source over the limit is refused before
    # it is parsed, and the checker stops at its node limit.
    if isinstance(source, str) and len(source) > MAX_SOURCE:
        assert builders == []
    assert all(b.nodes <= MAX_NODES + 1 for b in builders)


@pytest.mark.parametrize(("name", "message"), [
    ("pow-tower", "`**` is not allowed (it can take unbounded time and memory)"),
    ("str-times-int", "cannot apply this arithmetic to text and number"),
    ("nested-not", "expression is nested too deeply or is too large"),
    ("nested-unary", "expression is nested too deeply or is too large"),
    ("or-chain-nodes", "expression is nested too deeply or is too large"),
    ("compare-chain", "expression is nested too deeply or is too large"),
    ("parser-nesting", "syntax error: too many nested parentheses"),
    ("or-chain-5000", "expression is too long"),
    ("huge-int-digits", "expression is too long"),
    ("long-source", "expression is too long"),
    ("huge-int", "is too large"),
    ("huge-float", "number inf is out of range"),
    ("huge-string", "text literal is too long"),
])
def test_resource_exhaustion_is_refused_by_its_limit(name: str, message: str) -> None:
    source = dict(CORPUS)[name]
    with pytest.raises(ExprError) as refused:
        check(source, SCOPE)
    assert message in refused.value.message


@pytest.mark.parametrize(("source", "message"), [
    ('__import__("os")', "unknown function `__import__`"),
    ("title.__class__", "attribute access is not allowed"),
    ("attributes.__class__", "attribute name `__class__` is not allowed"),
    ("_e", "name `_e` is not allowed (names may not start with _)"),
    ("__builtins__", "name `__builtins__` is not allowed (names may not start with _)"),
    ("lambda: 1", "lambdas are not allowed; a rule is one expression"),
    ("(x := 1)", "`:=` is not allowed; a rule is one expression"),
    ('f"{title}" == "x"', 'f-strings are not allowed; use a plain "string"'),
    ("10**10**10 > 1",
     "`**` is not allowed (it can take unbounded time and memory); write the number out"),
    ("not " * 200 + "true", "expression is nested too deeply or is too large"),
    (" or ".join(["true"] * 5000), "expression is too long"),
    ("title is None", "`is` is not allowed"),
    ("~employees", "bitwise operators are not allowed"),
    ("employees in {1, 2}", "set literals are not allowed; use a list `[..]` after `in`"),
    ('{"a": 1} == attributes.x', "dict literals are not allowed"),
    ('title[0] == "a"', "indexing is not allowed"),
    ("1" + "0" * 30 + " > employees", "number 1000000000000000000000000000000 is too large"),
    ('"' + "a" * 1500 + '" == title', "text literal is too long"),
    ('b"x" == title', "literal b'x' is not allowed"),
    ("", "empty expression"),
])
def test_refusal_messages(source: str, message: str) -> None:
    with pytest.raises(ExprError) as info:
        check(source, SCOPE)
    assert info.value.message == message


def test_null_byte_is_a_parse_error() -> None:
    with pytest.raises(ExprError) as info:
        check("title == 1\x00", SCOPE)
    assert "cannot be parsed" in info.value.message or "syntax error" in info.value.message


def test_compiled_stage_has_no_builtins() -> None:
    fn = compile_stage("t", "first", [check('title == "x"', SCOPE)], BUILTINS)
    assert fn.__globals__["__builtins__"] == {}
    assert not any(k in fn.__globals__ for k in ("eval", "exec", "open", "__import__"))


def test_pure_parentheses_are_harmless_grouping() -> None:
    # Parentheses add no tree depth: 100 of them around a literal are still just `true`.
    check("(" * 100 + "true" + ")" * 100, SCOPE)
