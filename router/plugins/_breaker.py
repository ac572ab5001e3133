"""The circuit breaker that switches a failing plugin hook off for a cool-down.

One breaker per (plugin, hook). ``threshold`` consecutive failures open it: calls are skipped
until ``cooldown`` seconds have passed; then one trial call is let through (half-open). If it
succeeds the breaker closes, if it fails it opens for another cool-down. The clock is injected
(``time.monotonic`` by default) so tests move time instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

__all__ = ["Breaker", "BreakerState"]

BreakerState = Literal["closed", "open", "half_open"]


class Breaker:
    __slots__ = ("clock", "cooldown", "failures", "opened", "reopen_at", "state", "threshold",
                 "trial")

    def __init__(self, *, threshold: int = 5, cooldown: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = max(1, threshold)
        self.cooldown = cooldown
        self.clock = clock
        self.state: BreakerState = "closed"
        self.failures = 0  # consecutive
        self.reopen_at = 0.0
        self.opened = 0  # how many times it opened, for `plugins list` and tests
        self.trial = False  # a half-open trial call is in flight

    def allow(self) -> bool:
        """May the hook be called now? In half-open state only one trial at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "open":
            if self.clock() < self.reopen_at:
                return False
            self.state = "half_open"
            self.trial = True
            return True
        if self.trial:  # half-open, a trial already running
            return False
        self.trial = True
        return True

    def success(self) -> None:
        self.failures = 0
        if self.state != "closed":
            self.state = "closed"
            self.trial = False

    def neutral(self) -> None:
        """A call that proved nothing either way (a sink refused one event for good): the
        failure count stays, a half-open trial slot is freed for the next call."""
        self.trial = False

    def failure(self) -> bool:
        """Record a failure; True when this one opened the breaker."""
        self.failures += 1
        self.trial = False
        if self.state == "half_open" or (self.state == "closed"
                                         and self.failures >= self.threshold):
            self.state = "open"
            self.reopen_at = self.clock() + self.cooldown
            self.opened += 1
            return True
        return False

    def remaining(self) -> float:
        """Seconds until an open breaker lets a trial call through (0 when not open)."""
        return max(0.0, self.reopen_at - self.clock()) if self.state == "open" else 0.0
