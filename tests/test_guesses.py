"""router/state/guesses.py: what optimistic prefetches guess, and when they stop guessing."""

from __future__ import annotations

from router.state.guesses import Guesses


def test_a_guess_is_the_last_non_empty_reply_else_absent() -> None:
    g = Guesses()
    assert g.guess("lr:{account:a.com}", 1) == [None]
    g.remember([("HMGET", "lr:{account:a.com}", "owner"), ("GET", "x")], [[b"r1"], b"3"])
    assert g.guess("lr:{account:a.com}", 1) == [b"r1"]
    assert g.guess("x", 1) == [None]  # only HMGET reads are guessed
    g.remember([("HMGET", "lr:{account:a.com}", "owner")], [[None]])  # the owner went away
    assert g.guess("lr:{account:a.com}", 1) == [None]


def test_memory_is_bounded() -> None:
    g = Guesses()
    for i in range(g.SEEN_MAX + 10):
        g.remember([("HMGET", f"k{i}", "seq")], [[b"1"]])
    assert len(g._seen) <= g.SEEN_MAX
    assert g.guess(f"k{g.SEEN_MAX + 9}", 1) == [b"1"]  # the newest is kept


def test_many_stale_guesses_pause_guessing() -> None:
    g = Guesses()
    for i in range(g.WINDOW):  # a quarter stale, exactly: still guessing
        g.record(i < g.LIMIT)
    assert g.guessing()
    for i in range(g.WINDOW):
        g.record(i <= g.LIMIT)
    assert [g.guessing() for _ in range(g.PAUSE)] == [False] * g.PAUSE
    assert g.guessing()
