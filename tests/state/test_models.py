"""The state layer's value types (router/state/models.py): times in ms, claim outcomes, what
counts as committed, when a rep is available."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from router.state.models import (
    AssignResult,
    Claim,
    HistoryEntry,
    Prefetched,
    RepState,
    from_ms,
    to_ms,
)

NOW = dt.datetime(2026, 3, 2, 17, 0, 0, 123000, tzinfo=dt.UTC)


def test_times_travel_as_epoch_milliseconds() -> None:
    assert to_ms(dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) == 0
    assert to_ms(NOW) == 1772470800123
    berlin = NOW.astimezone(dt.timezone(dt.timedelta(hours=1)))
    assert to_ms(berlin) == to_ms(NOW)  # the same instant in any zone
    for raw in (1772470800123, 1772470800123.0, "1772470800123", b"1772470800123"):
        assert from_ms(raw) == NOW, raw
    assert from_ms(0).tzinfo is dt.UTC
    with pytest.raises(ValueError, match="timezone-aware"):
        to_ms(dt.datetime(2026, 3, 2, 17, 0))


def _claim(state: str, lead_id: str = "L1") -> Claim:
    return Claim(scope="key:web", key="k", state=state,  # type: ignore[arg-type]
                 lead_id=lead_id, fingerprint="fp", redis_key="lr:{lr}:idem:key:web:k",
                 marker="F|fp|L1")


def test_a_claim_is_owned_only_when_new() -> None:
    assert [_claim(s).owned for s in ("new", "done", "mismatch", "in_flight")] == \
        [True, False, False, False]


def test_the_blocking_claim_is_mismatch_then_in_flight_then_done() -> None:
    def blocking(*states: str) -> str | None:
        got = Prefetched(claims=tuple(_claim(s, f"L{i}") for i, s in enumerate(states)),
                         account_owner=None).blocking
        return got.state if got else None

    assert blocking() is None and blocking("new", "new") is None
    assert blocking("done", "in_flight", "mismatch") == "mismatch"
    assert blocking("done", "in_flight", "new") == "in_flight"
    assert blocking("new", "done") == "done"
    pre = Prefetched(claims=(_claim("new", "A"), _claim("done", "B"), _claim("new", "C")),
                     account_owner="r1")
    assert [c.lead_id for c in pre.owned_claims] == ["A", "C"]


@pytest.mark.parametrize(("status", "committed"), [
    ("assigned", True), ("queued", True), ("exists", False), ("duplicate", False),
    ("in_flight", False), ("stale", False)])
def test_only_assigned_and_queued_are_committed(status: str, committed: bool) -> None:
    result = AssignResult(lead_id="L1", status=status,  # type: ignore[arg-type]
                          owner=None, pool=None, queue=None, strategy=None, reason="",
                          assigned_at=NOW, due_at=None)
    assert result.committed is committed


def test_a_rep_is_available_when_their_absence_has_ended() -> None:
    later = NOW + dt.timedelta(hours=1)
    assert RepState(rep="r").available_at(NOW)
    assert not RepState(rep="r", status="away").available_at(NOW)  # no end: until changed
    away = RepState(rep="r", status="out_of_office", until=later)
    assert not away.available_at(NOW)
    assert away.available_at(later) and away.available_at(later + dt.timedelta(days=1))


def test_history_entries_leave_out_what_is_not_set() -> None:
    entry = HistoryEntry(event="accepted", at=NOW, by="r1")
    doc = msgspec.json.decode(msgspec.json.encode(entry))
    assert doc == {"event": "accepted", "at": "2026-03-02T17:00:00.123000Z", "by": "r1"}
    with pytest.raises(AttributeError):
        entry.owner = "x"  # type: ignore[misc]
