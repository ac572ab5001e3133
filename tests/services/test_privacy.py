"""router/services/privacy.py: what is stored about a person, and erasing it (real Valkey)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _wiring import route, wired

from router.services.privacy import UnknownLead
from router.state.audit import Actor
from router.state.store import Store

pytestmark = pytest.mark.anyio


async def test_a_person_s_leads_are_found_and_erased_with_a_log_entry(store: Store,
                                                                     tmp_path: Path) -> None:
    services = wired(store, tmp_path)
    privacy = services.privacy
    first = await route(services, "ada@example.com")
    second = await route(services, "ada@example.com", external_id="crm-1")
    other = await route(services, "bob@example.com")
    assert await privacy.lead_ids("ada@example.com") == sorted([first, second])

    entry = await privacy.erase_person("ada@example.com", by=Actor("admin-token"))

    assert (entry.kind, entry.leads, entry.by) == ("person", 2, "admin-token")
    assert entry.id and entry.at > 0
    assert await privacy.lead_ids("ada@example.com") == []
    assert await store.get_lead(first) is None and await store.get_lead(second) is None
    assert await store.get_lead(other) is not None  # nobody else's records
    assert [e.id for e in await privacy.erasures()] == [entry.id]


async def test_one_lead_is_erased_and_an_unknown_one_is_refused(store: Store,
                                                                tmp_path: Path) -> None:
    services = wired(store, tmp_path)
    privacy = services.privacy
    kept = await route(services, "cy@example.com")
    gone = await route(services, "cy@example.com")

    entry = await privacy.erase_lead(gone, by=Actor("key", "key_1"))

    assert (entry.kind, entry.leads, entry.events, entry.by) == ("lead", 1, 0, "key_1")
    assert await privacy.lead_ids("cy@example.com") == [kept]  # left the person's index
    with pytest.raises(UnknownLead, match="no lead"):
        await privacy.erase_lead(gone, by=Actor("key", "key_1"))
    first, second = await privacy.erasures(), await privacy.erasures(count=1)
    assert len(first) == 1 and second == first  # newest first, bounded by count


async def test_engagement_of_a_person_by_email_or_lead(store: Store, tmp_path: Path) -> None:
    services = wired(store, tmp_path)
    privacy = services.privacy
    lead_id = await route(services, "dee@example.com")
    assert await privacy.engagement_of_email("nobody@example.com") is None
    state = await privacy.engagement_of_lead(lead_id)  # the commit linked the person
    assert state is not None and state.lead == lead_id and not state.activity.types
    assert await privacy.engagement_of_email("dee@example.com") == state
    with pytest.raises(UnknownLead):
        await privacy.engagement_of_lead("ld_000000000000000000000000000000000000")
