"""router/observability/metrics.py: naming, bounded labels, the fast children's flush, the
generated docs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import prometheus_client
import pytest
from _ops import ROOT, promtool

from router.observability import metrics

BASE_UNITS = ("_seconds", "_bytes", "_total", "_info", "_leads", "_timestamp_seconds")
FORBIDDEN_LABELS = {"email", "lead_id", "lead", "request_id", "path", "url", "phone", "name",
                    "company", "domain", "external_id", "user_agent", "ip"}


def test_every_metric_follows_prometheus_naming() -> None:
    names = [d.name for d in metrics.DEFINITIONS]
    assert len(names) == len(set(names)), "duplicate metric names"
    for d in metrics.DEFINITIONS:
        assert re.fullmatch(r"leadrouter_[a-z][a-z0-9_]*", d.name), d.name
        assert d.doc.endswith("."), d.name
        if d.kind == "counter":
            assert d.name.endswith("_total"), d.name
        else:
            assert not d.name.endswith("_total"), d.name
        assert not re.search(r"_(milli|micro)?seconds?_ms|_ms$|_millis", d.name), d.name
        if d.kind == "histogram" and not d.unit_note:
            assert d.name.endswith("_seconds"), f"{d.name}: histograms measure seconds"


def test_no_unbounded_or_personal_values_in_labels() -> None:
    for d in metrics.DEFINITIONS:
        assert not FORBIDDEN_LABELS & set(d.labels), (d.name, d.labels)


def test_fast_counter_and_histogram_flush_into_prometheus_client_exactly() -> None:
    """The fast children write into prometheus-client's private bucket values; this fails if a
    prometheus-client upgrade changes that layout (compared with real observe() calls)."""
    values = [0.00001, 0.0001, 0.0003, 0.002, 0.002, 0.04, 0.7, 3.0, 100.0]
    fast = metrics.FastHistogram("leadrouter_test_flush_seconds", "Test.", ["op"],
                                 buckets=metrics.FAST_LATENCY)
    metrics.DEFINITIONS.remove(fast.definition)
    reference = prometheus_client.Histogram("ref_seconds", "Test.", ["op"],
                                            registry=prometheus_client.CollectorRegistry(),
                                            buckets=metrics.FAST_LATENCY)
    for v in values:
        fast.labels("x").observe(v)
        reference.labels("x").observe(v)
    fast._flush()
    fast._flush()  # a second flush with nothing pending adds nothing

    def samples(metric: prometheus_client.Histogram) -> dict[tuple[str, str], float]:
        out = {}
        for family in metric.collect():
            for s in family.samples:
                if not s.name.endswith("_created"):
                    out[(s.name.rsplit("_seconds", 1)[1], s.labels.get("le", ""))] = s.value
        return out

    assert samples(fast.real) == samples(reference)
    counter = metrics.FastCounter("leadrouter_test_flush_total", "Test.", ["k"])
    metrics.DEFINITIONS.remove(counter.definition)
    for _ in range(5):
        counter.labels("a").inc()
    counter.labels("b").inc(2.5)
    counter._flush()
    assert counter.real.labels("a")._value.get() == 5
    assert counter.real.labels("b")._value.get() == 2.5
    assert counter.labels("a").pending == 0


def test_render_is_valid_exposition_for_promtool() -> None:
    metrics.HTTP_REQUESTS.labels("POST", "/v1/leads", "201").inc()
    metrics.HTTP_DURATION.labels("POST", "/v1/leads").observe(0.0012)
    metrics.SCORES.observe(55)
    metrics.SCRAPE.rules_version = "abc123"
    metrics.SCRAPE.queues = {"unassigned": 3}
    text = metrics.render().decode()
    assert 'leadrouter_build_info{python_version=' in text
    assert 'leadrouter_rules_info{version="abc123"} 1.0' in text
    assert 'leadrouter_queue_leads{queue="unassigned"} 3.0' in text
    promtool("check", "metrics", stdin=text)


def test_operations_doc_carries_the_generated_reference() -> None:
    """docs/operations.md embeds `python -m router.observability.metrics` verbatim; regenerate
    it with `uv run python -m router.observability.metrics` and paste between the markers when
    a metric changes."""
    doc = (ROOT / "docs" / "operations.md").read_text()
    start, end = doc.index(metrics.BEGIN), doc.index(metrics.END) + len(metrics.END)
    assert doc[start:end] == metrics.reference_markdown()
    printed = subprocess.run([sys.executable, "-m", "router.observability.metrics"],
                             capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert printed.strip() == metrics.reference_markdown()


def test_serve_does_not_import_prometheus_client_before_choosing_the_multiprocess_dir() -> None:
    """prometheus-client picks its value class at import: `leadrouter serve` must set
    PROMETHEUS_MULTIPROC_DIR before anything imports it (with one worker the app runs in the
    supervisor process)."""
    code = ("import sys, router.app.cli, router.app.serve, router.settings, "
            "router.observability.logs, "
            "router.engine.loader, router.state.embedded; "
            "print('prometheus_client' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.strip()
    assert out == "False"


def test_metrics_are_read_where_prometheus_client_keeps_them(tmp_path: Path) -> None:
    """prometheus-client keeps values in memory when it was imported before
    PROMETHEUS_MULTIPROC_DIR was set, whatever the variable says later: the exposition (and
    /v1/status, which counts from it) must then read memory, not the empty directory."""
    code = ("import os, prometheus_client; "
            f"os.environ['PROMETHEUS_MULTIPROC_DIR'] = {str(tmp_path)!r}; "
            "from router.observability import metrics; "
            "metrics.LEAD_OUTCOMES.labels('created').inc(); "
            "print(metrics.sample_value('leadrouter_lead_outcomes_total', {'outcome': 'created'}), "
            "b'leadrouter_lead_outcomes_total{outcome=\"created\"} 1.0' in metrics.render())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.split()
    assert out == ["1.0", "True"]


@pytest.mark.parametrize("raw, kept", [
    (b"abc-123", True), (b"0f8fad5b-d9cb-469f-a165-70867728950e", True), (b"", False),
    (b"x" * 129, False), (b"has space", False), (b"jane@example.com", False),
    (b"+1-555-123-4567", False), (b"\xff\xfe", False)])
def test_request_id_validation(raw: bytes, kept: bool) -> None:
    from router.observability.middleware import _valid_request_id

    assert (_valid_request_id(raw) is not None) is kept
