"""Small formatting helpers the lead, leads and queues pages share."""

from __future__ import annotations

import datetime as dt

__all__ = ["duration", "ts"]


def duration(seconds: float | None) -> str:
    """``3725`` → ``1h 2m 5s`` (negative: the same, as the time past)."""
    if seconds is None:
        return ""
    s = int(abs(seconds))
    d, rest = divmod(s, 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    parts = [f"{d}d"] * bool(d) + [f"{h}h"] * bool(h) + [f"{m}m"] * bool(m)
    return " ".join(parts + [f"{sec}s"] * (bool(sec) or not parts))


def ts(when: dt.datetime | None) -> str:
    """A time as the console shows it: ``2026-12-05 09:30:12 UTC`` (empty for None)."""
    if when is None:
        return ""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
