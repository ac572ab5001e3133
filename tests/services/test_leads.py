"""router/services/leads.py helpers: lead ids (time-ordered, 96 random bits)."""

from __future__ import annotations

import re
import time

from router.services.leads import new_lead_id

ID = re.compile(r"ld_[0-9a-f]{12}[0-9a-f]{24}")


def test_ids_are_unique_and_time_ordered() -> None:
    before = time.time_ns() // 1_000_000
    lead_ids = [new_lead_id() for _ in range(1000)]
    after = time.time_ns() // 1_000_000
    assert all(ID.fullmatch(i) for i in lead_ids)
    assert len(set(lead_ids)) == len(lead_ids)
    assert all(before <= int(i[3:15], 16) <= after for i in lead_ids)
