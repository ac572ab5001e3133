"""The service's clock, as a type handlers and services can ask for by name.

One object per app (``create_app(clock=...)`` lets tests move time); calling it gives the
current time, timezone-aware UTC. A class rather than a bare ``Callable`` so litestar's
dependency injection and mypy can both name it (``clock: Clock``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

__all__ = ["Clock"]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Clock:
    """``clock()`` → now. Wraps the injected time source (real time by default)."""

    __slots__ = ("_now",)

    def __init__(self, now: Callable[[], dt.datetime] | None = None) -> None:
        self._now = now or _utc_now

    def __call__(self) -> dt.datetime:
        return self._now()

    def ms(self) -> int:
        """Now in milliseconds since the epoch (the unit Redis records use)."""
        return int(self._now().timestamp() * 1000)

    @property
    def real(self) -> bool:
        """True when this clock reads real time (no time source was injected). Code that
        has a shared clock of its own for real time (the rate limits read Valkey's) uses it
        then, and this clock when a test or a replay moves time."""
        return self._now is _utc_now
