"""The outcome storage contract (router/state/outcomes.py) on real Valkey: stage fields, the
SLA's accepted_at as the ``accepted`` stage, one round trip for many leads."""

from __future__ import annotations

import pytest

from router.state.outcomes import LeadOutcome, outcome_of, read_outcomes, stage_times
from router.state.store import Store


def test_stage_times_map_the_sla_field_and_the_stage_fields() -> None:
    fields = {b"accepted_at": b"1000", b"stg:accepted": b"5", b"stg:won": b"9000",
              b"stg:bad": b"x", b"state": b"accepted", b"amount": b"10.5"}
    assert stage_times(fields) == {"accepted": 1000, "won": 9000}
    assert stage_times({"stg:meeting": "7", "accepted_at": ""}) == {"meeting": 7}
    assert outcome_of({"amount": "10.5", "currency": "EUR", "lost_reason": ""}) == LeadOutcome(
        stages={}, amount="10.5", currency="EUR", reason=None)


@pytest.mark.anyio
async def test_read_outcomes_one_round_trip(store: Store) -> None:
    k = store.keys
    await store.wire.call("HSET", k.lead("a"), "state", "contacted", "accepted_at", "100",
                          "stg:contacted", "200", "stg:won", "900", "amount", "12.50",
                          "currency", "USD", "decision", "{}")
    await store.wire.call("HSET", k.lead("b"), "state", "assigned", "stg:lost", "300",
                          "lost_reason", "price")
    before = store.round_trips
    got = await read_outcomes(store, ["a", "b", "gone", "a"])
    assert store.round_trips == before + 1
    assert got == {
        "a": LeadOutcome(stages={"accepted": 100, "contacted": 200, "won": 900},
                         amount="12.50", currency="USD"),
        "b": LeadOutcome(stages={"lost": 300}, reason="price")}
    custom = await read_outcomes(store, ["a"], stages=["contacted"])
    assert custom["a"].stages == {"accepted": 100, "contacted": 200}
    assert await read_outcomes(store, []) == {}
