"""User regular expressions: RE2 (linear time, no backtracking), asked only "does it match?".

Two shapes, both memoised per subject value in a bounded dict (cleared when full, which keeps
memory fixed and needs no LRU bookkeeping on the hot path):

* :class:`Matcher` — one pattern; what ``matches(x, "...")`` compiles to in a stage function.
* :class:`MatchSet` — every pattern a ruleset applies to the same field, answered by ONE RE2
  call per distinct value. The fused ruleset function uses it: a lead's email is new every
  time, so the memo never helps there, and each RE2 call through pybind11 costs ~0.8 µs
  whatever the pattern; two email rules used to pay it twice per lead.

Before either asks RE2, a check built from the pattern's literal text (router/engine/
_prefilter.py) rules out most texts with one ``str`` call: ``^(info|sales)@`` cannot match an
email that starts with neither.

google-re2's Python ``search`` builds match objects and offset tables in Python (~9 µs);
``RE2.Match`` through the binding converts its anchor enum per call (~1.5 µs); an RE2 ``Set``
answers yes/no with neither, so both shapes use the binding's ``Set`` when it has one and the
public API otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import re2

from router.engine._prefilter import prefilter_any

__all__ = ["MatchSet", "Matcher"]

MEMO_SIZE = 4096


def _options() -> Any:
    options = re2.Options()
    options.never_capture = True  # only yes/no is needed: lets RE2 use its DFA
    options.log_errors = False  # errors are reported as rule errors, not on stderr
    return options


def _raw_set(patterns: Sequence[str], options: Any) -> Any:
    """The binding's RE2::Set over ``patterns`` (index i = patterns[i]), or None."""
    binding = getattr(re2, "_re2", None)
    anchor = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
    if binding is None or anchor is None or not hasattr(binding, "Set"):
        return None
    try:
        raw = binding.Set(anchor, options)
        for i, pattern in enumerate(patterns):
            if raw.Add(pattern.encode()) != i:
                return None
        if not raw.Compile():
            return None
    except Exception:
        return None
    return raw


def _memoised(match: Callable[[str], Any], miss: Any,
              may_match: Callable[[str], bool] | None) -> tuple[dict[Any, Any], Callable[..., Any]]:
    """A bounded memo in front of ``match``; non-text (null included) answers ``miss``, and
    so does text the patterns' literal prefilter rules out (without taking a memo slot)."""
    # Compiled rules look answers up in ``memo`` inline and call ``test`` only on a miss; null
    # is seeded so a missing field never reaches RE2.
    memo: dict[Any, Any] = {None: miss}

    def test(text: Any) -> Any:
        if not isinstance(text, str):
            return miss
        if may_match is not None and not may_match(text):
            return miss
        hit = memo.get(text)
        if hit is None:
            hit = match(text)
            if len(memo) >= MEMO_SIZE:
                memo.clear()
                memo[None] = miss
            memo[text] = hit
        return hit

    return memo, test


class Matcher:
    """One compiled RE2 pattern answering only "is there a match?", as fast as RE2 allows.

    ``test`` is a plain closure because calling it is the hot path; a bound ``__call__`` costs
    twice as much. Compiling raises ``re2.error`` (or another binding error) for a bad pattern.
    """

    __slots__ = ("memo", "pattern", "test")

    def __init__(self, pattern: str) -> None:
        options = _options()
        compiled = re2.compile(pattern, options)  # raises on a bad pattern, with RE2's message
        self.pattern = pattern
        raw = _raw_set([pattern], options)
        if raw is not None:
            def match(text: str) -> bool:
                return bool(raw.Match(text.encode()))
        else:  # a future binding without the private fast path: use the public API

            def match(text: str) -> bool:
                return compiled.search(text) is not None

        self.memo, self.test = _memoised(match, False, prefilter_any([pattern]))


class MatchSet:
    """Several patterns against one subject: ``test(text)`` is a tuple of booleans, one per
    pattern, from one RE2 call (memoised like :class:`Matcher`, null and non-text all false).
    """

    __slots__ = ("memo", "patterns", "test")

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(patterns)
        n = len(self.patterns)
        none = (False,) * n
        raw = _raw_set(self.patterns, _options())
        if raw is not None:
            def match(text: str) -> tuple[bool, ...]:
                hits = raw.Match(text.encode())
                if not hits:
                    return none
                out = [False] * n
                for i in hits:
                    out[i] = True
                return tuple(out)
        else:
            tests = [Matcher(p).test for p in self.patterns]

            def match(text: str) -> tuple[bool, ...]:
                return tuple(t(text) for t in tests)

        self.memo, self.test = _memoised(match, none, prefilter_any(self.patterns))
