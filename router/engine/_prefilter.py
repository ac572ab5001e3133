"""A necessary condition for an RE2 pattern to match, checked with ``str`` methods.

Each call into RE2 through its binding costs ~0.6 µs whatever the pattern and text (the
fixed price of the pybind11 call and RE2's per-call set-up), and a lead's email is new every
time, so its memo never helps. Most patterns users write for lead rules name literal text:
``^(info|sales|admin)@``, ``(?i)\\bvp\\b``, ``\\.edu$``. If none of those literals occurs in
the text (or, for an anchored pattern, begins it), the pattern cannot match, and
``str.startswith``/``in`` say so in ~0.1 µs. RE2 still answers every text that passes.

The pattern is read by a small parser of its own, not Python's ``re`` parser: the two
dialects differ (``[[:alpha:]]``, ``a{,3}``, ``\\Q...\\E`` mean different things), and a
literal seen where RE2 sees none would make the prefilter reject a text RE2 matches. So the
parser accepts only a plain subset (literals, escaped punctuation, groups, alternation,
quantifiers, character classes, ``.``, ``\\d\\w\\s\\b``, ``^``/``$``, leading flags) and
gives up (no prefilter; RE2 answers everything) on anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import product

__all__ = ["Prefilter", "prefilter", "prefilter_any"]

# Literal strings per exact item are combined by cross product; past this many the run
# stops growing (a shorter prefix is still necessary, only less selective).
_MAX_STRINGS = 64
_META = set("\\.+*?()|[]{}^$")
_CLASS_ESCAPES = set("dDwWsS")
_ZERO_WIDTH_ESCAPES = set("bB")


class _GiveUp(Exception):
    """The pattern uses syntax outside the subset this parser is sure about."""


# An item of a concatenation: the set of exact strings it matches, or None when it is not a
# small finite set of literals ("any": classes, quantified atoms, assertions...).
_Item = frozenset[str] | None
# A branch's requirement: (anchored at the start?, the literal strings, one of which occurs).
_Need = tuple[bool, frozenset[str]]


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.s = pattern
        self.i = 0
        self.fold = False

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def flags(self) -> None:
        # Leading `(?i)`, `(?s)`, `(?U)` and combinations; `m` would make `^` a line anchor.
        while self.s.startswith("(?", self.i):
            end = self.s.find(")", self.i)
            flags = self.s[self.i + 2:end] if end > 0 else ""
            if not flags or not set(flags) <= set("isU"):
                return
            self.fold = self.fold or "i" in flags
            self.i = end + 1

    def alternation(self) -> list[list[_Item | str]]:
        branches = [self.sequence()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.sequence())
        return branches

    def sequence(self) -> list[_Item | str]:
        items: list[_Item | str] = []  # "^" marks a start anchor
        while self.peek() not in ("", "|", ")"):
            item = self.atom()
            if self.quantifier():
                item = None
            items.append(item)
        return items

    def atom(self) -> _Item | str:
        c = self.peek()
        self.i += 1
        if c == "^":
            return "^"
        if c in ("$", "."):
            return None
        if c == "(":
            return self.group()
        if c == "[":
            self.char_class()
            return None
        if c == "\\":
            return self.escape()
        if c in _META:  # a quantifier with nothing to repeat, a stray `]` or `{`
            raise _GiveUp
        if self.fold and not c.isascii():
            raise _GiveUp  # RE2 folds some non-ASCII letters onto ASCII ones (Kelvin sign, long s)
        return frozenset((c.lower() if self.fold else c,))

    def group(self) -> _Item:
        if self.s.startswith("?:", self.i):
            self.i += 2
        elif self.s.startswith("?P<", self.i) or self.s.startswith("?<", self.i):
            end = self.s.find(">", self.i)
            if end < 0:
                raise _GiveUp
            self.i = end + 1
        elif self.peek() == "?":
            raise _GiveUp  # scoped flags and anything else
        branches = self.alternation()
        if self.peek() != ")":
            raise _GiveUp
        self.i += 1
        out: set[str] = set()
        for branch in branches:
            strings = _exact(branch)
            if strings is None:
                return None
            out |= strings
            if len(out) > _MAX_STRINGS:
                return None
        return frozenset(out)

    def char_class(self) -> None:
        # Only skipped (a class is "any"), but its end must be found the way RE2 finds it.
        if self.peek() == "^":
            self.i += 1
        if self.peek() == "]":
            self.i += 1
        while True:
            c = self.peek()
            if c == "":
                raise _GiveUp
            if c == "]":
                self.i += 1
                return
            if c == "\\":
                self.i += 2
            elif self.s.startswith("[:", self.i):
                end = self.s.find(":]", self.i + 2)
                if end < 0:
                    raise _GiveUp
                self.i = end + 2
            else:
                self.i += 1

    def escape(self) -> _Item:
        c = self.peek()
        self.i += 1
        if c in _CLASS_ESCAPES or c in _ZERO_WIDTH_ESCAPES:
            return None
        if c and not c.isalnum() and c.isascii() and c.isprintable():
            return frozenset((c,))  # escaped punctuation is that character
        raise _GiveUp  # \x41, \pL, \Q...\E, \A, \z, \n and friends: not worth the risk

    def quantifier(self) -> bool:
        c = self.peek()
        if c in ("*", "+", "?"):
            self.i += 1
        elif c == "{":
            end = self.s.find("}", self.i)
            body = self.s[self.i + 1:end] if end > 0 else ""
            low, _, high = body.partition(",")
            # RE2 reads `{` that is not a valid repeat as a literal; such text is left alone.
            if not (low.isdigit() and (high == "" or high.isdigit())):
                raise _GiveUp
            self.i = end + 1
        else:
            return False
        if self.peek() == "?":  # non-greedy
            self.i += 1
        if self.peek() in ("*", "+", "?", "{"):
            raise _GiveUp
        return True


def _exact(items: Sequence[_Item | str]) -> frozenset[str] | None:
    """Every string a sequence of exact items matches (None if any item is not exact)."""
    out = frozenset(("",))
    for item in items:
        if not isinstance(item, frozenset):
            return None
        out = frozenset(a + b for a, b in product(out, item))
        if len(out) > _MAX_STRINGS:
            return None
    return out


def _need(items: list[_Item | str]) -> _Need | None:
    """What one branch needs: its anchored prefix, else its most selective literal run."""
    anchored = bool(items) and items[0] == "^"
    if anchored:
        items = items[1:]
    if "^" in items:
        raise _GiveUp
    runs: list[frozenset[str]] = []
    run = frozenset(("",))
    for item in [*items, None]:
        if isinstance(item, frozenset) and len(run) * len(item) <= _MAX_STRINGS:
            run = frozenset(a + b for a, b in product(run, item))
            continue
        runs.append(run)
        if anchored:
            break  # the prefix ends at the first item that is not exact
        run = frozenset(("",)) if not isinstance(item, frozenset) else item
    best = max(runs, key=lambda r: min(len(s) for s in r))
    if min(len(s) for s in best) == 0:
        return None
    return anchored, best


class Prefilter:
    """``may_match(text)`` is False only when the pattern cannot match ``text``."""

    __slots__ = ("fold", "needs")

    def __init__(self, needs: list[_Need], fold: bool) -> None:
        # (anchored, the literals sorted): one of them begins (anchored) or occurs in the text
        self.needs = [(anchored, tuple(sorted(strings))) for anchored, strings in needs]
        self.fold = fold

    def may_match(self, text: str) -> bool:
        if self.fold:
            if not text.isascii():
                return True
            text = text.lower()
        for anchored, strings in self.needs:
            if anchored:
                if text.startswith(strings):
                    return True
            elif any(s in text for s in strings):
                return True
        return False

    def checker(self) -> Callable[[str], bool]:
        """``may_match`` specialised to this pattern's shape (one C call in common cases)."""
        if len(self.needs) == 1 and self.needs[0][0]:
            return _prefix_checker(self.needs[0][1], self.fold)
        if len(self.needs) == 1 and len(self.needs[0][1]) == 1:
            part = self.needs[0][1][0]
            if self.fold:
                return lambda text: not text.isascii() or part in text.lower()
            return lambda text: part in text
        return self.may_match


def _prefix_checker(prefixes: tuple[str, ...], fold: bool) -> Callable[[str], bool]:
    """Does the text start with one of ``prefixes``? Indexed by first character: most texts
    are ruled out by one dict lookup, without ``startswith`` trying every prefix."""
    by_first: dict[str, tuple[str, ...]] = {}
    for prefix in prefixes:
        by_first[prefix[0]] = (*by_first.get(prefix[0], ()), prefix)

    def check(text: str) -> bool:
        first = text[:1]
        if not fold:
            candidates = by_first.get(first)
            return candidates is not None and text.startswith(candidates)
        if not text.isascii():
            return True  # RE2 folds a few non-ASCII letters onto ASCII ones: ask RE2
        candidates = by_first.get(first.lower())
        return candidates is not None and text.lower().startswith(candidates)

    return check


def prefilter(pattern: str) -> Prefilter | None:
    """The prefilter of ``pattern``, or None when it has none (RE2 must see every text)."""
    parser = _Parser(pattern)
    try:
        parser.flags()
        branches = parser.alternation()
        if parser.i != len(pattern):
            return None  # an unbalanced `)`
        needs = [_need(branch) for branch in branches]
    except (_GiveUp, IndexError):
        return None
    if any(n is None for n in needs):
        return None
    return Prefilter([n for n in needs if n is not None], parser.fold)


def prefilter_any(patterns: Sequence[str]) -> Callable[[str], bool] | None:
    """One check that is False only when none of ``patterns`` can match (None: no check)."""
    filters = [prefilter(p) for p in patterns]
    if not filters or any(f is None for f in filters):
        return None
    checks: list[Callable[[str], bool]] = []
    for fold in (False, True):
        same = [f for f in filters if f is not None and f.fold == fold]
        if not same:
            continue
        # Anchored needs of several patterns merge into one startswith() over all prefixes.
        prefixes = frozenset(s for f in same for a, strings in f.needs if a for s in strings)
        needs = [(False, frozenset(strings)) for f in same for a, strings in f.needs if not a]
        if prefixes:
            needs.insert(0, (True, prefixes))
        checks.append(Prefilter(needs, fold).checker())
    if len(checks) == 1:
        return checks[0]
    first, second = checks
    return lambda text: first(text) or second(text)
