"""Rate limits in Redis: one GCRA script call per request, correct across workers.

GCRA (generic cell rate algorithm) keeps one number per bucket, the "theoretical arrival time";
a limit of N per period allows a burst of N and then one request every period/N. The script
reads the server's clock, so several workers (and replicas) share one limit exactly; a limiter
given ``now_ms`` (an app whose clock was injected: tests, replays) judges by that clock instead.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

import msgspec

from router.state.errors import translate_errors
from router.state.scripts import Script
from router.state.store import Store

__all__ = ["RateDecision", "RateLimiter"]


class RateDecision(msgspec.Struct, frozen=True, kw_only=True):
    allowed: bool
    limit: int
    period_s: int
    remaining: int
    reset_s: int  # until the bucket is full again
    retry_after_s: int  # 0 when allowed


def _script() -> Script:
    source = resources.files("router.state").joinpath("lua", "ratelimit.lua").read_text(
        encoding="utf-8")
    return Script("ratelimit", source)


_SCRIPT = _script()


class RateLimiter:
    def __init__(self, store: Store, *, now_ms: Callable[[], int] | None = None) -> None:
        self.store = store
        self.now_ms = now_ms  # None: the server's clock

    async def hit(self, bucket: str, *, limit: int, period_s: int,
                  cost: int = 1) -> RateDecision:
        """Count one request against ``bucket`` (``limit`` per ``period_s``)."""
        key = self.store.keys.ratelimit(bucket)
        args = [str(limit), str(period_s * 1000), str(cost)]
        if self.now_ms is not None:
            args.append(str(self.now_ms()))
        with translate_errors("ratelimit"):
            allowed, remaining, reset_ms, retry_ms = await _SCRIPT(
                self.store.wire, [key], args, self.store._count)
        return RateDecision(allowed=bool(allowed), limit=limit, period_s=period_s,
                            remaining=max(0, int(remaining)),
                            reset_s=max(0, -(-int(reset_ms) // 1000)),
                            retry_after_s=max(1, -(-int(retry_ms) // 1000)) if not allowed
                            else 0)
