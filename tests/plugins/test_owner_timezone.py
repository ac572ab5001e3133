"""The delivery's enricher adding the owner's time zone (rules/reps.yaml) to each event, then
handing it on (the action links)."""

from __future__ import annotations

import types
from typing import Any

from leadrouter_sdk.testing import make_event

from router.plugins.delivery import with_owner_timezone


def test_owner_timezone_then_the_next_enricher() -> None:
    reps: dict[str, Any] = {"alice": types.SimpleNamespace(timezone="America/Los_Angeles")}
    seen: list[Any] = []

    def links(event: Any) -> Any:
        seen.append(event)
        return event

    enrich = with_owner_timezone(lambda: reps, links)
    event = enrich(make_event(owner="alice"))
    assert event.data["owner_timezone"] == "America/Los_Angeles" and seen == [event]
    assert "owner_timezone" not in enrich(make_event(owner="ghost")).data  # not in the rules
    assert "owner_timezone" not in with_owner_timezone(lambda: reps)(make_event()).data
    reps["alice"] = types.SimpleNamespace(timezone="Asia/Tokyo")  # a reload: read each time
    assert enrich(make_event(owner="alice")).data["owner_timezone"] == "Asia/Tokyo"
