"""The observability tests' service: the real app with the example rules (deploy/k8s), three
workers configured, served in a thread over real HTTP on this test's Redis database."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _ops import InThreadService, write_example_rules

from router.observability import logs


@pytest.fixture
def service(redis_url: str, tmp_path: Path) -> Iterator[InThreadService]:
    rules = write_example_rules(tmp_path / "rules")
    with InThreadService(redis_url=redis_url, rules_dir=str(rules),
                         reload_poll_seconds=0, workers=3) as svc:
        yield svc


@pytest.fixture
def json_log(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], io.StringIO]:
    """``json_log(name)``: what the logger ``name`` writes from now on, as ``leadrouter
    serve`` formats it (JSON lines), for this test only."""
    def capture(name: str) -> io.StringIO:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logs.JsonFormatter())
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "handlers", [handler])
        monkeypatch.setattr(logger, "propagate", False)
        monkeypatch.setattr(logger, "level", logging.INFO)
        monkeypatch.setattr(logger.manager, "disable", 0)
        logger.manager._clear_cache()
        return stream

    return capture
