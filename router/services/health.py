"""What the probes and the status page ask: is Redis there, which rules are served, and the
values read at scrape time (router/observability/instrument.py).

The store is attached in the app's lifespan; until then (and while Redis is down) the service
reports not ready instead of failing.
"""

from __future__ import annotations

from router.observability.instrument import refresh_scrape_values
from router.services.clock import Clock
from router.services.rules import RulesManager
from router.settings import Settings
from router.state.errors import StateError
from router.state.store import Store

__all__ = ["Health"]


class Health:
    def __init__(self, *, rules: RulesManager, settings: Settings, clock: Clock) -> None:
        self.rules = rules
        self.settings = settings
        self._clock = clock
        self.store: Store | None = None

    async def store_ok(self) -> bool:
        """Redis answers a PING."""
        if self.store is None:
            return False
        try:
            await self.store.ping()
        except StateError:
            return False
        return True

    async def refresh_scrape(self) -> None:
        """Fill the scrape-time metric values (one bounded round trip)."""
        rules = self.rules
        last = rules.last_result
        await refresh_scrape_values(
            ruleset=rules.current if rules.loaded else None, loaded_at=rules.loaded_at,
            last_reload_ok=last is None or last.ok, workers=self.settings.workers,
            store=self.store, now=self._clock())
