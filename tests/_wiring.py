"""The app's services wired on a test's store, without HTTP: ``wired(store, tmp_path)`` builds
them exactly as the app's lifespan does (router/app/application.py: ``build_services``), on the
default test rules (``_service.write_rules``), and ``route(services, email)`` stores a lead."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _service import write_rules
from leadrouter_sdk import decode_lead

from router.app.application import build_services
from router.app.services import Services
from router.plugins.host import PluginHost
from router.services.clock import Clock
from router.services.rules import RulesManager
from router.settings import Settings
from router.state.store import Store


def wired(store: Store, tmp_path: Path, *, now: Callable[[], dt.datetime] | None = None,
          **settings: Any) -> Services:
    directory = write_rules(tmp_path / "rules")
    rules = RulesManager(directory)
    rules.load_initial()
    services = Services(settings=Settings(rules_dir=str(directory), reload_poll_seconds=0,
                                          **settings),
                        rules=rules, plugins=PluginHost(), clock=Clock(now))
    services.connect(build_services(services, store))
    return services


async def route(services: Services, email: str, **fields: Any) -> str:
    """Route one lead with ``email``; its id."""
    body = json.dumps({"email": email, "company": "Acme", **fields}).encode()
    outcome, _, lead_id = await services.leads.route(decode_lead(body), body=body)
    assert outcome == "created", (outcome, lead_id)
    return str(lead_id)
