"""The observability tests' service: the real app with the example rules (deploy/k8s), three
workers configured, served in a thread over real HTTP on this test's Redis database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _ops import InThreadService, write_example_rules


@pytest.fixture
def service(redis_url: str, tmp_path: Path) -> Iterator[InThreadService]:
    rules = write_example_rules(tmp_path / "rules")
    with InThreadService(redis_url=redis_url, rules_dir=str(rules),
                         reload_poll_seconds=0, workers=3) as svc:
        yield svc
