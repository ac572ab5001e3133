"""router/state/guesses.py: what optimistic prefetches guess, and when they stop guessing."""

from __future__ import annotations

from router.state.guesses import Guesses

ACCOUNT = ("HMGET", "lr:{lr}:account:a.com", "owner")


def test_a_guess_is_the_last_non_empty_reply_else_absent() -> None:
    g = Guesses()
    assert g.guess(ACCOUNT) == [None]
    g.remember([ACCOUNT, ("GET", "x")], [[b"r1"], b"3"])
    assert g.guess(ACCOUNT) == [b"r1"]
    assert g.guess(("HMGET", "x", "v")) == [None]  # only HMGET reads are remembered
    g.remember([ACCOUNT], [[None]])  # the owner went away
    assert g.guess(ACCOUNT) == [None]


def test_a_guess_is_per_field_list() -> None:
    # A rules reload may read other fields of the same hash (engagement event types): the
    # reply remembered for the old list must not be handed out for the new one.
    g = Guesses()
    g.remember([("HMGET", "lr:{lr}:person:p", "seq", "e:demo")], [[b"3", b"x"]])
    assert g.guess(("HMGET", "lr:{lr}:person:p", "seq", "e:demo", "e:webinar")) == [None] * 3
    assert g.guess(("HMGET", "lr:{lr}:person:p", "seq", "e:demo")) == [b"3", b"x"]


def test_memory_is_bounded() -> None:
    g = Guesses()
    for i in range(g.SEEN_MAX + 10):
        g.remember([("HMGET", f"k{i}", "seq")], [[b"1"]])
    assert len(g._seen) <= g.SEEN_MAX
    assert g.guess(("HMGET", f"k{g.SEEN_MAX + 9}", "seq")) == [b"1"]  # the newest is kept


def test_many_stale_guesses_pause_guessing() -> None:
    g = Guesses()
    for i in range(g.WINDOW):  # a quarter stale, exactly: still guessing
        g.record(i < g.LIMIT)
    assert g.guessing()
    for i in range(g.WINDOW):
        g.record(i <= g.LIMIT)
    assert [g.guessing() for _ in range(g.PAUSE)] == [False] * g.PAUSE
    assert g.guessing()
