"""`leadrouter serve` as a real process, one worker (the default) and two: after one lead,
every series the alert rules (deploy/prometheus/alerts.yaml) and the Grafana dashboard
(deploy/grafana) query is in ``/metrics``, ``/v1/status`` counts the lead, and the start-up
log announces each plugin once per process, with the process id."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from _ops import DEPLOY, LEAD, write_example_rules
from _service import ServiceProcess
from ruamel.yaml import YAML


def _queried_series() -> set[str]:
    """The ``leadrouter_*`` series names the alert rules and the dashboard query."""
    exprs = [rule["expr"] for group in YAML(typ="safe").load(
        (DEPLOY / "prometheus" / "alerts.yaml").read_text())["groups"] for rule in group["rules"]]
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "leadrouter.json").read_text())
    exprs += [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", ())]
    names = {name for expr in exprs for name in re.findall(r"\bleadrouter_[a-z_]+", expr)}
    assert len(names) > 15, names  # the parsing found them
    return names


def _service(tmp_path: Path, redis_url: str, workers: int) -> ServiceProcess:
    rules = write_example_rules(tmp_path / "rules")
    # The lead must be assigned whatever the hour and the weekday the suite runs at (the
    # example reps work mon-fri 08:00-18:00): the reps of this copy work around the clock.
    reps = rules / "reps.yaml"
    text = reps.read_text()
    assert text.count('{mon-fri: "08:00-18:00"}') == 3, text
    reps.write_text(text.replace('{mon-fri: "08:00-18:00"}', '{mon-sun: "00:00-24:00"}'))
    return ServiceProcess(rules_dir=rules,
                          log_path=tmp_path / "serve.log", redis_url=redis_url,
                          data_dir=tmp_path / "data", workers=workers,
                          env={"LEADROUTER_METRICS_FLUSH_SECONDS": "0.2",
                               "LEADROUTER_LOG_LEVEL": "info"})


@pytest.mark.parametrize("workers", [1, 2])
def test_every_alerted_and_charted_series_is_there_after_one_lead(
        tmp_path: Path, redis_url: str, workers: int) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    wanted = _queried_series()
    with _service(tmp_path, redis_url, workers) as svc:
        posted = httpx.post(f"{svc.url}/v1/leads", json=LEAD, timeout=10)
        assert posted.status_code == 201, posted.text
        assert posted.json()["assignment"]["owner"], posted.json()  # assigned, SLA running
        time.sleep(0.6)  # > the flush interval
        for _ in range(3):  # with two workers, whichever answers reports both
            with httpx.Client(base_url=svc.url, timeout=10) as client:
                text = client.get("/metrics").text
                status = client.get("/v1/status").json()
            present = {sample.name for family in text_string_to_metric_families(text)
                       for sample in family.samples}
            assert not wanted - present, (sorted(wanted - present), svc.log_tail())
            assert status["leads"]["routed"] == 1, status
            assert status["workers"] == workers


@pytest.mark.parametrize("workers", [1, 2])
def test_plugins_are_announced_once_per_process_with_its_id(
        tmp_path: Path, redis_url: str, workers: int) -> None:
    with _service(tmp_path, redis_url, workers) as svc:
        pass
    lines = [json.loads(line) for line in svc.log_path.read_text().splitlines()
             if line.startswith("{")]
    plugin_lines = [line for line in lines if line["logger"] == "leadrouter.plugins"]
    assert plugin_lines, svc.log_tail()
    assert all("pid" in line for line in lines), lines
    per_process = Counter((line["pid"], line["msg"]) for line in plugin_lines)
    assert max(per_process.values()) == 1, per_process
    pids = {line["pid"] for line in plugin_lines}
    assert len(pids) == workers, pids
    started = {int(m) for line in lines
               for m in re.findall(r"Started server process \[(\d+)\]", line["msg"])}
    assert pids == started, (pids, started)  # the serving processes, not the supervisor
