"""router/app.py: what the app's lifespan sets up for a worker process."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from litestar.testing import TestClient

from router.app import create_app
from router.plugins import PluginHost
from router.settings import Settings, SettingsError

RULES = Path(__file__).resolve().parents[1] / "rules"


def test_the_collector_runs_less_often_once_the_app_has_started(redis_url: str) -> None:
    before = gc.get_threshold()
    settings = Settings(redis_url=redis_url, rules_dir=str(RULES), reload_poll_seconds=0,
                        gc_threshold=12_345)
    try:
        app = create_app(settings, plugins=PluginHost())
        assert gc.get_threshold() == before  # building the app changes nothing yet
        with TestClient(app) as client:
            assert client.get("/livez").status_code == 200
            assert gc.get_threshold() == (12_345, *before[1:])
    finally:
        gc.set_threshold(*before)  # the test process runs many apps; a worker runs one


def test_the_default_threshold_and_its_bounds() -> None:
    assert Settings().gc_threshold == 50_000
    assert Settings.from_env({"LEADROUTER_GC_THRESHOLD": "2000"}).gc_threshold == 2000
    with pytest.raises(SettingsError, match="LEADROUTER_GC_THRESHOLD"):
        Settings.from_env({"LEADROUTER_GC_THRESHOLD": "0"})  # 0 would switch collection off
