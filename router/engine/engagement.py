"""Engagement, pure: windowed counts, last-seen times and decaying points from stored activity.

What the state layer keeps per person and event type (:class:`TypeActivity`, see
``router/state/engagement.py`` for the storage and its bounds) is enough to answer, for any
``now``, exactly:

* ``count("x", days=N)`` — events of type ``x`` that happened less than N days before ``now``
  (the window rule of ``router/engine/cases.py``), from the stored times;
* ``last("x")`` — the newest stored time;
* the decayed points of the ``engagement:`` section. One event of type ``x`` at time ``t`` is
  worth ``points(x) * 2 ** (-(now - t) / half_life)`` at ``now``: exponential decay, exact for
  any elapsed time, computed when a lead is evaluated (no nightly job). The per-type total is
  capped at ``cap(x)`` (on its absolute value) after decay.

The newest :data:`MAX_TIMES` times of each type within :data:`HORIZON_MS` are kept one by one.
Older events are *folded* into a remainder ``rem`` at reference time ``rem_at``: their decay
factors summed at ``rem_at`` (``Σ 2 ** (-(rem_at - t) / h)``), which decays on exactly like the
events it stands for, because ``2 ** (-(now - t) / h) == 2 ** (-(now - rem_at) / h) *
2 ** (-(rem_at - t) / h)``. So decay stays exact after folding (as long as the half-life is the
one that was in force when they were folded); only ``count()`` no longer sees folded events,
and the newest 100 events of a type in a window are all any sane rule asks about.

Nothing here does I/O or reads a clock: the caller passes ``now``.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec
from leadrouter_sdk import Contribution

import router.engine.schema as s
from router.engine.errors import RuleError

__all__ = [
    "DAY_MS",
    "DEFAULT_HALF_LIFE_MS",
    "HORIZON_MS",
    "MAX_TIMES",
    "Activity",
    "EngagementSpec",
    "EventPoints",
    "Line",
    "TypeActivity",
    "activity_from_times",
    "compile_engagement",
    "contributions",
    "decay",
    "from_ms",
    "lines",
    "merge",
    "ms",
    "record",
    "tracked_events",
    "windows",
]

DAY_MS = 86_400_000
HORIZON_MS = 365 * DAY_MS  # the longest count() window (expr.MAX_DAYS)
MAX_TIMES = 100  # times kept one by one per person and event type
DEFAULT_HALF_LIFE_MS = 14 * DAY_MS  # for folding when the rules have no engagement section
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)


def ms(when: dt.datetime) -> int:
    """Epoch milliseconds, exactly (integer arithmetic; ``timestamp() * 1000`` can be 1 ms off
    and window edges are compared to the millisecond)."""
    if when.tzinfo is None:
        raise ValueError("engagement times must be timezone-aware")
    return (when - _EPOCH) // _MS


def from_ms(value: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(milliseconds=value)


# --- the rules' side --------------------------------------------------------------------------


class EventPoints(msgspec.Struct, frozen=True, kw_only=True):
    event: str
    points: float
    cap: float | None = None
    description: str | None = None
    file: str = ""
    line: int | None = None


class EngagementSpec(msgspec.Struct, frozen=True, kw_only=True):
    """The compiled ``engagement:`` section."""

    half_life_ms: int
    events: dict[str, EventPoints] = {}
    file: str = ""
    line: int | None = None

    @property
    def half_life_text(self) -> str:
        return _duration_text(self.half_life_ms // 1000)


def _duration_text(seconds: int) -> str:
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(out) or "0s"


Decode = Callable[..., Any]


def compile_engagement(doc: Any, path: tuple[str | int, ...], value: Any,
                       errors: list[RuleError], decode: Decode) -> EngagementSpec | None:
    """Check the ``engagement:`` section item by item (every mistake with its file and line);
    ``decode(doc, path, item, type, errors, rule)`` is the loader's decoder."""
    section = decode(doc, path, value, s.Engagement, errors, "engagement")
    if section is None:
        return None
    try:
        half_life = s.parse_duration(section.half_life)
    except ValueError as exc:
        errors.append(doc.error((*path, "half_life"), str(exc),
                                fix="write e.g. 14d, 36h or 7d12h", rule="engagement"))
        return None
    events: dict[str, EventPoints] = {}
    for name, item in section.events.items():
        where = (*path, "events", name)
        spec = decode(doc, where, {"points": item} if isinstance(item, int | float)
                      and not isinstance(item, bool) else item, s.EngagementEvent, errors, name)
        if spec is None:
            continue
        if not math.isfinite(spec.points) or spec.points == 0:
            errors.append(doc.error((*where, "points") if isinstance(item, dict) else where,
                                    "points must be a non-zero number",
                                    fix="e.g. `points: 5` (negative points are allowed)",
                                    rule=name))
            continue
        events[name] = EventPoints(event=name, points=float(spec.points),
                                   cap=None if spec.cap is None else float(spec.cap),
                                   description=spec.description, file=doc.file,
                                   line=doc.where(where)[0])
    return EngagementSpec(half_life_ms=half_life * 1000, events=events, file=doc.file,
                          line=doc.where(path)[0])


def tracked_events(windows: Iterable[tuple[str, int]], last_events: Iterable[str],
                   spec: EngagementSpec | None) -> tuple[str, ...]:
    """Every event type a ruleset reads: count() and last() arguments and the types that score
    points. Sorted, so the same rules always read the same fields."""
    names = {e for e, _ in windows} | set(last_events)
    if spec is not None:
        names |= set(spec.events)
    return tuple(sorted(names))


# --- the stored activity ----------------------------------------------------------------------


class TypeActivity(msgspec.Struct, frozen=True):
    """One event type of one person: ``n`` events recorded, the newest ``times`` (epoch ms,
    ascending) and the folded remainder of the others. Stored as the JSON array
    ``[n, rem, rem_at, t1, t2, ...]`` (router/state/lua/event.lua keeps the same layout)."""

    n: int
    rem: float = 0.0
    rem_at: int = 0
    times: tuple[int, ...] = ()

    @classmethod
    def decode(cls, raw: bytes | str) -> TypeActivity:
        values = _decode_numbers(raw)
        if len(values) < 3:
            raise ValueError("engagement field shorter than [n, rem, rem_at]")
        return cls(n=int(values[0]), rem=float(values[1]), rem_at=int(values[2]),
                   times=tuple(int(t) for t in values[3:]))

    def encode(self) -> bytes:
        return _encode_numbers([self.n, self.rem, self.rem_at, *self.times])

    @property
    def last(self) -> int | None:
        if self.times:
            return self.times[-1]
        return self.rem_at if self.n else None


_decode_numbers = msgspec.json.Decoder(list[float]).decode
_encode_numbers = msgspec.json.Encoder().encode


class Activity(msgspec.Struct, frozen=True, kw_only=True):
    """What the rules can read of one person's events: per type, see :class:`TypeActivity`.
    ``seq`` counts every change to the person's engagement (the state layer uses it to order
    re-evaluations)."""

    seq: int = 0
    types: dict[str, TypeActivity] = {}


def fold(rem: float, rem_at: int, t: int, half_life_ms: int) -> tuple[float, int]:
    """Add one event at ``t`` to the remainder ``(rem, rem_at)``; the reference time becomes
    the newer of the two. Mirrors ``fold`` in router/state/lua/event.lua."""
    if rem == 0:
        return 1.0, t
    if t <= rem_at:
        return rem + 2.0 ** (-(rem_at - t) / half_life_ms), rem_at
    return rem * 2.0 ** (-(t - rem_at) / half_life_ms) + 1.0, t


def record(activity: TypeActivity | None, t: int, now: int, *,
           half_life_ms: int = DEFAULT_HALF_LIFE_MS, max_times: int = MAX_TIMES,
           horizon_ms: int = HORIZON_MS) -> TypeActivity:
    """``activity`` with one more event at ``t``: the reference for what the Lua script stores
    (tests compare the two). Times beyond the horizon or the cap are folded."""
    a = activity or TypeActivity(n=0)
    times = sorted((*a.times, t))
    rem, rem_at = a.rem, a.rem_at
    cutoff = now - horizon_ms
    while times and (times[0] <= cutoff or len(times) > max_times):
        rem, rem_at = fold(rem, rem_at, times.pop(0), half_life_ms)
    return TypeActivity(n=a.n + 1, rem=rem, rem_at=rem_at, times=tuple(times))


def merge(a: TypeActivity, b: TypeActivity, now: int, *,
          half_life_ms: int = DEFAULT_HALF_LIFE_MS, max_times: int = MAX_TIMES,
          horizon_ms: int = HORIZON_MS) -> TypeActivity:
    """Two records of the same type as one (an anonymous visitor identified as a known person).
    Mirrors ``merge`` in router/state/lua/identify.lua."""
    rem, rem_at = a.rem, a.rem_at
    if b.rem:
        if rem == 0:
            rem, rem_at = b.rem, b.rem_at
        elif b.rem_at <= rem_at:
            rem += b.rem * 2.0 ** (-(rem_at - b.rem_at) / half_life_ms)
        else:
            rem = rem * 2.0 ** (-(b.rem_at - rem_at) / half_life_ms) + b.rem
            rem_at = b.rem_at
    times = sorted((*a.times, *b.times))
    cutoff = now - horizon_ms
    while times and (times[0] <= cutoff or len(times) > max_times):
        rem, rem_at = fold(rem, rem_at, times.pop(0), half_life_ms)
    return TypeActivity(n=a.n + b.n, rem=rem, rem_at=rem_at, times=tuple(times))


def activity_from_times(times: Mapping[str, Iterable[int]], now: int, *, seq: int = 0,
                        half_life_ms: int = DEFAULT_HALF_LIFE_MS) -> Activity:
    """The activity a person with these events (epoch ms per type) would have: for rule test
    cases and dry runs, which describe events as "N days ago"."""
    types: dict[str, TypeActivity] = {}
    for event, ts in times.items():
        cur: TypeActivity | None = None
        for t in sorted(ts):
            cur = record(cur, min(t, now), now, half_life_ms=half_life_ms)
        if cur is not None:
            types[event] = cur
    return Activity(seq=seq, types=types)


# --- what the rules read ------------------------------------------------------------------------


def windows(activity: Activity, wanted: Iterable[tuple[str, int]], last_events: Iterable[str],
            now: dt.datetime) -> tuple[dict[tuple[str, int], int], dict[str, dt.datetime]]:
    """``count()`` and ``last()`` values: an event counts in an N-day window when it happened
    less than N days before ``now`` (``now - t < N days``, to the millisecond). Only the
    person's own event types are walked (the windows of other types stay 0)."""
    counts: dict[tuple[str, int], int] = dict.fromkeys(wanted, 0)  # the order of ``wanted``
    types = activity.types
    if not types:  # a new person (most leads): every window is empty, nothing was last
        return counts, {}
    by_event = _by_event(wanted, counts)
    now_ms = ms(now)
    for event, a in types.items():
        edges = by_event.get(event)
        times = a.times
        if edges is None or not times:
            continue
        size = len(times)
        for key, span in edges:  # times are ascending: those after the window's edge count
            counts[key] = size - bisect_right(times, now_ms - span)
    last: dict[str, dt.datetime] = {}
    for event in last_events:
        seen = types.get(event)
        if seen is not None:
            t = seen.last
            if t is not None:
                last[event] = _EPOCH + _MS * t  # from_ms(t), exactly
    return counts, last


# The windows of a ``wanted`` set grouped by event type, per set (a ruleset's is a frozenset,
# the same object for every lead): a pure memo, a few slots.
_Edges = dict[str, tuple[tuple[tuple[str, int], int], ...]]
_BY_EVENT: dict[frozenset[tuple[str, int]], _Edges] = {}


def _by_event(wanted: Iterable[tuple[str, int]], counts: Mapping[tuple[str, int], int]
              ) -> _Edges:
    """Event type → its windows of ``wanted``: (the ``(event, days)`` key, days in ms)."""
    key = wanted if isinstance(wanted, frozenset) else None
    found = _BY_EVENT.get(key) if key is not None else None
    if found is None:
        grouped: dict[str, list[tuple[tuple[str, int], int]]] = {}
        for window in counts:
            grouped.setdefault(window[0], []).append((window, window[1] * DAY_MS))
        found = {event: tuple(edges) for event, edges in grouped.items()}
        if key is not None:
            if len(_BY_EVENT) >= 8:
                _BY_EVENT.clear()
            _BY_EVENT[key] = found
    return found


def decay(activity: TypeActivity, now_ms: int, half_life_ms: int) -> float:
    """Σ over the events of ``2 ** (-(now - t) / half_life)``: the decayed event count. An event
    stamped later than ``now`` (another worker's clock) counts as fresh, never more."""
    total = 0.0
    for t in activity.times:
        total += 2.0 ** (-max(0, now_ms - t) / half_life_ms)
    if activity.rem:
        total += activity.rem * 2.0 ** (-max(0, now_ms - activity.rem_at) / half_life_ms)
    return total


class Line(msgspec.Struct, frozen=True, kw_only=True):
    """One event type's engagement contribution, everything the explanation shows."""

    event: str
    count: int  # events recorded (raw = count * points)
    points: float  # per event, from the rules
    raw: float  # before decay
    decayed: float  # after decay, before the cap
    cap: float | None
    capped: bool
    final: float  # what the score gets
    last_at: dt.datetime | None = None

    def describe(self, half_life: str) -> str:
        """``3 x 5 = 15 raw, 11.04 after decay (half-life 14d); cap 12 not reached``"""
        text = (f"{self.count} x {self.points:g} = {self.raw:g} raw, "
                f"{self.decayed:.4g} after decay (half-life {half_life})")
        if self.cap is not None:
            text += f"; cap {self.cap:g} " + ("applied" if self.capped else "not reached")
        return text


def _round(x: float) -> float:
    return round(x, 4) + 0.0  # + 0.0: no "-0.0"


def lines(spec: EngagementSpec, activity: Activity, now: dt.datetime) -> tuple[Line, ...]:
    """Per event type with points and at least one recorded event, in the section's order."""
    now_ms = ms(now)
    out = []
    for event, p in spec.events.items():
        a = activity.types.get(event)
        if a is None or a.n <= 0:
            continue
        decayed = p.points * decay(a, now_ms, spec.half_life_ms)
        final = decayed
        capped = p.cap is not None and abs(decayed) > p.cap
        if capped and p.cap is not None:
            final = math.copysign(p.cap, decayed)
        last = a.last
        out.append(Line(event=event, count=a.n, points=p.points, raw=_round(a.n * p.points),
                        decayed=_round(decayed), cap=p.cap, capped=capped, final=_round(final),
                        last_at=None if last is None else from_ms(last)))
    return tuple(out)


def contribution_of(line: Line, spec: EngagementSpec) -> Contribution:
    return Contribution(rule=f"engagement:{line.event}", group="engagement", points=line.final,
                        reason=line.describe(spec.half_life_text))


def contributions(spec: EngagementSpec, activity: Activity,
                  now: dt.datetime) -> tuple[Contribution, ...]:
    """The decayed points as score contributions (group ``engagement``, rule
    ``engagement:<event>``), for :func:`router.engine.evaluate.evaluate`'s ``extra``."""
    return tuple(contribution_of(line, spec) for line in lines(spec, activity, now))
