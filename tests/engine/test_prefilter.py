"""The literal prefilter in front of RE2: it may only ever say "cannot match" when RE2 agrees."""

from __future__ import annotations

import pytest
import re2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.engine._prefilter import prefilter, prefilter_any


def _re2_matches(pattern: str, text: str) -> bool:
    return re2.search(pattern, text) is not None


def _compiles(pattern: str) -> bool:
    try:
        re2.compile(pattern)
    except Exception:
        return False
    return True


# Patterns from a grammar mixing what the prefilter reads with what it must give up on or treat
# as "any": classes (POSIX ones too), escapes, anchors, flags, quantifiers RE2 reads as text.
_PLAIN = st.sampled_from(["a", "b", "c", "A", "K", "@", "-", " ", r"\.", r"\@", r"\-"])
_TRICKY = st.sampled_from([
    ".", "[a-c]", "[^a]", "[]a]", "[[:digit:]]", "[[:alpha:]]x", r"\d", r"\w", r"\s", r"\b",
    r"\B", "^", "$", r"\x41", r"\pL", r"\Qa.b\E", r"\A", r"\z", "\u017f", "é", "{", "}", "]",
])
_ATOMS = st.one_of(_PLAIN, _PLAIN, _PLAIN, _TRICKY)
_QUANTIFIERS = st.sampled_from(["", "", "", "*", "+", "?", "{2}", "{1,3}", "{,2}", "{2,}", "*?"])


def _pieces(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    group = st.tuples(st.sampled_from(["(", "(?:", "(?P<n>", "(?i:", "(?m:"]),
                      st.lists(inner, min_size=1, max_size=3)).map(
        lambda t: t[0] + "|".join(t[1]) + ")")
    piece = st.tuples(st.one_of(_ATOMS, group), _QUANTIFIERS).map("".join)
    return st.lists(piece, min_size=1, max_size=5).map("".join)


_BODY = st.recursive(_pieces(_ATOMS), _pieces, max_leaves=12)
PATTERNS = st.tuples(st.sampled_from(["", "", "(?i)", "(?m)", "(?s)", "(?is)", "(?U)"]),
                     st.lists(_BODY, min_size=1, max_size=3)).map(
    lambda t: t[0] + "|".join(t[1]))
TEXTS = st.text(alphabet="abcABK@-. \n\u017fé0123{}]xkK", max_size=14)
MATCHED: list[str] = []


def _near_misses(draw: st.DrawFn, literals: list[str]) -> list[str]:
    # Texts around the literals the prefilter reads (case changed, at the start or not), so
    # that many of them match: random text alone almost never matches a generated pattern.
    texts = draw(st.lists(TEXTS, max_size=3))
    for _ in range(draw(st.integers(1, 5))):
        literal = draw(st.sampled_from(literals))
        if draw(st.booleans()):
            literal = literal.upper()
        prefix = draw(st.sampled_from(["", "", "x", "b", "A@", " "]))
        texts.append(prefix + literal + draw(TEXTS))
    return texts


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.filter_too_much])
@given(PATTERNS, st.data())
def _never_rejects_a_text_re2_matches(pattern: str, data: st.DataObject) -> None:
    if not _compiles(pattern):
        return
    pf = prefilter(pattern)
    if pf is None:
        return
    check = pf.checker()
    literals = sorted({s for _, strings in pf.needs for s in strings})
    for text in _near_misses(data.draw, literals):
        if _re2_matches(pattern, text):
            MATCHED.append(pattern)
            assert pf.may_match(text), (pattern, text)
            assert check(text), (pattern, text)
        else:
            assert pf.may_match(text) == check(text), (pattern, text)


def test_prefilter_never_rejects_a_text_re2_matches() -> None:
    MATCHED.clear()
    _never_rejects_a_text_re2_matches()
    # and the generator is worth something: many patterns met texts they match
    assert len(set(MATCHED)) >= 10


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PATTERNS, min_size=1, max_size=3), st.data())
def test_combined_prefilter_never_rejects_a_text_any_pattern_matches(
        patterns: list[str], data: st.DataObject) -> None:
    patterns = [p for p in patterns if _compiles(p)]
    check = prefilter_any(patterns)
    if check is None:
        return
    filters = [prefilter(p) for p in patterns]
    literals = sorted({s for f in filters if f for _, strings in f.needs for s in strings})
    for text in _near_misses(data.draw, literals):
        if any(_re2_matches(p, text) for p in patterns):
            assert check(text), (patterns, text)


@pytest.mark.parametrize(("pattern", "anchored", "literals"), [
    ("(?i)^(info|sales)@", True, ("info@", "sales@")),
    ("(?i)^(test|fake)[0-9._-]*@", True, ("fake", "test")),
    (r"(?i)\b(vp|chief)\b", False, ("chief", "vp")),
    (r"\.edu$", False, (".edu",)),
    ("x(a|b)y", False, ("xay", "xby")),
    ("ab+cde", False, ("cde",)),  # the quantified b ends a run; the longer run is kept
    ("[[:alpha:]]xyz", False, ("xyz",)),
])
def test_what_the_prefilter_reads(pattern: str, anchored: bool, literals: tuple[str, ...]) -> None:
    pf = prefilter(pattern)
    assert pf is not None
    assert pf.needs == [(anchored, literals)]


@pytest.mark.parametrize("pattern", [
    "(?m)^abc",  # ^ is a line anchor
    "a{,3}",  # RE2 reads this as text; Python's re as a repeat
    r"\Qabc\E", r"\x41bc", r"\pLabc", "abc(?i:def)", "[[:alpha:]]]",
    "abc|.*",  # one branch needs nothing
    "", "a?", "[abc]+",
])
def test_what_the_prefilter_leaves_to_re2(pattern: str) -> None:
    assert prefilter(pattern) is None


def test_case_folding_leaves_non_ascii_text_to_re2() -> None:
    pf = prefilter("(?i)^kim@")
    assert pf is not None
    # RE2 folds the Kelvin sign onto k: the prefilter must not rule this text out
    assert _re2_matches("(?i)^kim@", "\u212aim@x.io")
    assert pf.checker()("\u212aim@x.io")
    assert not pf.checker()("bob@x.io")
    assert pf.checker()("KIM@x.io")
