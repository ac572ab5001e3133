"""The shadow ruleset's record (``LEADROUTER_SHADOW_RULES``): which candidate ruleset shadowed
live traffic, and when.

Shadow mode never stores a per-lead shadow decision: every committed lead keeps what its
decision was made from (router/state/inputs.py), so replaying the shadow period's leads against
the shadow rules gives exactly where each lead would have gone. What is kept, per shadow
rules version:

- ``shadow:rules:<version>``: its rule files (msgpack ``{file name: YAML text}``), written once
  per version, expiring with the decisions it explains (the decision retention, refreshed
  whenever a worker loads that version again);
- ``shadow:start`` (zset, version by ms): when a worker first loaded it (``ZADD LT``: the
  earliest of all workers);
- ``shadow:last`` (zset, version by ms): the arrival time of the latest live lead a worker
  evaluated against it (``ZADD GT``: the latest of all workers).

Single commands that only move a bound one way: several workers write them without a race.
"""

from __future__ import annotations

from typing import Any

import msgspec

from router.state.errors import check_reply, translate_errors
from router.state.store import Store

__all__ = ["ShadowPeriod", "record_shadow_rules", "shadow_files", "shadow_periods",
           "touch_shadow"]

_encode = msgspec.msgpack.Encoder().encode
_decode_files = msgspec.msgpack.Decoder(dict[str, str]).decode


class ShadowPeriod(msgspec.Struct, frozen=True, kw_only=True):
    """One shadow rules version: first loaded at ``start_ms``; the latest live lead evaluated
    against it arrived at ``last_ms`` (None: none yet)."""

    version: str
    start_ms: int
    last_ms: int | None = None


def _key(store: Store, name: str) -> str:
    return store.keys.shadow(name)


async def record_shadow_rules(store: Store, version: str, files: dict[str, str], *,
                              at_ms: int, ttl_seconds: int) -> None:
    """Record that ``version`` (rule files ``files``, by plain name) shadows from ``at_ms``."""
    with translate_errors("record_shadow_rules"):
        store.round_trips += 1
        replies = await store.wire.batch([
            ("SET", _key(store, f"rules:{version}"), _encode(files), "EX", ttl_seconds),
            ("ZADD", _key(store, "start"), "LT", at_ms, version),
            ("EXPIRE", _key(store, "start"), ttl_seconds),
            ("EXPIRE", _key(store, "last"), ttl_seconds),
        ])
    for reply in replies:
        check_reply("record_shadow_rules", reply)


async def touch_shadow(store: Store, version: str, at_ms: int) -> None:
    """A live lead that arrived at ``at_ms`` was evaluated against ``version``."""
    with translate_errors("touch_shadow"):
        store.round_trips += 1
        reply = await store.wire.call("ZADD", _key(store, "last"), "GT", at_ms, version)
    check_reply("touch_shadow", reply)


async def shadow_periods(store: Store) -> list[ShadowPeriod]:
    """Every recorded shadow version, oldest start first."""
    with translate_errors("shadow_periods"):
        store.round_trips += 1
        starts, lasts = await store.wire.batch([
            ("ZRANGE", _key(store, "start"), 0, -1, "WITHSCORES"),
            ("ZRANGE", _key(store, "last"), 0, -1, "WITHSCORES"),
        ])
    check_reply("shadow_periods", starts)
    check_reply("shadow_periods", lasts)
    last = {_text(m): int(float(s)) for m, s in _pairs(lasts)}
    return [ShadowPeriod(version=_text(m), start_ms=int(float(s)), last_ms=last.get(_text(m)))
            for m, s in _pairs(starts)]


async def shadow_files(store: Store, version: str) -> dict[str, str] | None:
    """The rule files of shadow ``version`` (None: not recorded, or expired)."""
    with translate_errors("shadow_files"):
        store.round_trips += 1
        raw = await store.wire.call("GET", _key(store, f"rules:{version}"))
    check_reply("shadow_files", raw)
    return None if raw is None else _decode_files(raw)


def _pairs(reply: object) -> list[tuple[Any, Any]]:
    if not isinstance(reply, list):
        return []
    if reply and isinstance(reply[0], list):  # RESP3 shape: [[member, score], ...]
        return [(p[0], p[1]) for p in reply]
    return list(zip(reply[::2], reply[1::2], strict=True))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
