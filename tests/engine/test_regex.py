"""RE2 matchers: one pattern (Matcher) and all of a field's patterns in one call (MatchSet)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.engine import _regex
from router.engine._regex import Matcher, MatchSet

PATTERNS = ["(?i)^(info|sales|admin)@", "(?i)^(test|fake)[0-9._-]*@", r"\bvp\b", "^$", "x+"]


@given(st.text(alphabet="infosaletstfkvpx@ .1-_", max_size=20))
def test_match_set_answers_what_each_pattern_answers(text: str) -> None:
    answers = MatchSet(PATTERNS).test(text)
    assert answers == tuple(Matcher(p).test(text) for p in PATTERNS)


def test_match_set_examples() -> None:
    ms = MatchSet(PATTERNS)
    assert ms.test("info@acme.com") == (True, False, False, False, False)
    assert ms.test("test12@x.io") == (False, True, False, False, True)
    assert ms.test("") == (False, False, False, True, False)
    assert ms.test("the vp of sales") == (False, False, True, False, False)


@pytest.mark.parametrize("value", [None, 3, b"info@x", ["info@x"]])
def test_null_and_non_text_never_match(value: object) -> None:
    assert MatchSet(PATTERNS).test(value) == (False,) * len(PATTERNS)
    assert Matcher(PATTERNS[0]).test(value) is False


def test_memo_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_regex, "MEMO_SIZE", 8)
    ms = MatchSet(PATTERNS)
    for i in range(50):
        ms.test(f"user{i}@example.com")
    assert len(ms.memo) <= 8
    assert ms.memo[None] == (False,) * len(PATTERNS)  # null stays seeded after a clear
    assert ms.test("info@acme.com")[0] is True


def test_fused_ruleset_asks_re2_once_per_field_value() -> None:
    import datetime as dt
    from pathlib import Path

    from leadrouter_sdk import Lead

    from router.engine.evaluate import evaluate
    from router.engine.loader import load_directory

    rs = load_directory(Path(__file__).resolve().parents[2] / "rules")
    assert rs.run is not None
    memos = [v for k, v in rs.run.__globals__.items() if k.startswith("_bm")]
    assert len(memos) >= 5  # email, title, industry, authority, names... one set per field
    ev = evaluate(rs, Lead(email="info@fresh-domain-1.example", title="VP Sales"),
                  now=dt.datetime(2026, 11, 24, tzinfo=dt.UTC))
    # both shipped email patterns (role account, test account) answered from one memo entry
    assert sum("info@fresh-domain-1.example" in m for m in memos) == 1
    assert "fit.email.role" in ev.matched
