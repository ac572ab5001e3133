"""A shared counter that tells every worker to re-read the rules directory.

An admin reload happens in one worker; the others poll this counter (one GET per poll
interval) and reload when it moves, so all converge on what is on disk even if file timestamps
did not change (e.g. a ConfigMap swap that preserves mtimes).
"""

from __future__ import annotations

from router.state.errors import translate_errors
from router.state.store import Store

__all__ = ["bump_rules_generation", "rules_generation"]


def _key(store: Store) -> str:
    return store.keys.rules_generation


async def rules_generation(store: Store) -> int:
    with translate_errors("rules_generation"):
        store.round_trips += 1
        value = await store.wire.call("GET", _key(store))
    return int(value or 0)


async def bump_rules_generation(store: Store) -> int:
    with translate_errors("bump_rules_generation"):
        store.round_trips += 1
        return int(await store.wire.call("INCR", _key(store)))
