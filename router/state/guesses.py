"""What an optimistic prefetch guesses (``Store.prefetch(optimistic=True)``), per worker.

A guess for an ``HMGET key *fields`` read is the last non-empty reply this worker was given to
remember for it (the store gives account owners only: ``models.Guard.keep``), else all fields
absent; the commit checks the first field against it (``models.Guard``). The worker also stops
guessing while guesses keep failing, since every stale one costs a second evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["Guesses"]


class Guesses:
    """Per-process memory of reads, and the switch. Guesses are checked in windows of
    ``WINDOW``; a window with more than ``LIMIT`` stale ones (leads of people with events, or of
    owned accounts this worker has not seen yet) turns guessing off for the next ``PAUSE``
    eligible prefetches, then it tries again."""

    WINDOW, LIMIT, PAUSE = 256, 64, 2048
    SEEN_MAX = 8192  # keys remembered (cleared, not evicted, when full: cheap and bounded)

    def __init__(self) -> None:
        # (key, fields) → reply: the fields are part of the key, because a rules reload may
        # change what is read of the same hash (the engagement event types).
        self._seen: dict[tuple[Any, ...], list[Any]] = {}
        self.checked = self.stale = self.paused = 0

    def guessing(self) -> bool:
        """Whether this eligible prefetch guesses (counts down a pause)."""
        if self.paused:
            self.paused -= 1
            return False
        return True

    def guess(self, read: tuple[Any, ...]) -> list[Any]:
        """The guessed reply of ``read``, an ``("HMGET", key, *fields)`` command."""
        return self._seen.get(read[1:]) or [None] * (len(read) - 2)

    def remember(self, reads: Sequence[tuple[Any, ...]], replies: Sequence[Any]) -> None:
        """Keep what ``reads`` (commands) found: the next guesses for their keys."""
        seen = self._seen
        for cmd, values in zip(reads, replies, strict=True):
            if cmd[0] != "HMGET":  # only HMGET reads are guessed
                continue
            key = tuple(cmd[1:])
            if any(v is not None for v in values):
                if len(seen) >= self.SEEN_MAX:
                    seen.clear()
                seen[key] = values
            else:  # absent is the default guess
                seen.pop(key, None)

    def record(self, stale: bool) -> None:
        """A commit checked a guess."""
        self.checked += 1
        self.stale += stale
        if self.checked >= self.WINDOW:
            if self.stale > self.LIMIT:
                self.paused = self.PAUSE
            self.checked = self.stale = 0
