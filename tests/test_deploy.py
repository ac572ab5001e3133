"""deploy/: every artifact checked by the real tool where one is installed here (promtool for
the Prometheus config, alert rules and their unit tests), parsed and checked for the fields that
matter otherwise (compose, Kubernetes, Grafana, Dockerfile). Docker itself cannot run here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from _ops import DEPLOY, ROOT, promtool, write_example_rules
from ruamel.yaml import YAML

from router.observability import metrics

yaml = YAML(typ="safe")
METRIC_NAMES = {d.name for d in metrics.DEFINITIONS}
SUFFIXES = ("_bucket", "_count", "_sum")


def _load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.load_all(path.read_text()) if doc is not None]


def _metrics_in(expr: str) -> set[str]:
    names = set(re.findall(r"\b(leadrouter_[a-z0-9_]+)", expr))
    return {next((n[: -len(s)] for s in SUFFIXES if n.endswith(s) and n[: -len(s)]
                  in METRIC_NAMES), n) for n in names}


def test_prometheus_config_and_alert_rules_pass_promtool() -> None:
    promtool("check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    promtool("check", "rules", str(DEPLOY / "prometheus" / "alerts.yaml"))


def test_alert_rules_unit_tests_pass() -> None:
    result = promtool("test", "rules", "alerts.test.yaml", cwd=DEPLOY / "prometheus")
    assert "SUCCESS" in result.stdout


def _alerts() -> list[dict[str, Any]]:
    doc = yaml.load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_alerts_use_defined_metrics_are_tested_and_documented() -> None:
    tests = (DEPLOY / "prometheus" / "alerts.test.yaml").read_text()
    ops = (ROOT / "docs" / "operations.md").read_text()
    required = {"error rate": "LeadrouterHighErrorRate", "p99": "LeadrouterHighLatency",
                "SLA breaches": "LeadrouterSlaBreachRate",
                "unassigned": "LeadrouterUnassignedPilingUp",
                "reload failing": "LeadrouterRulesReloadFailing",
                "Redis errors": "LeadrouterRedisErrors"}
    names = {rule["alert"] for rule in _alerts()}
    assert set(required.values()) <= names
    for rule in _alerts():
        unknown = _metrics_in(rule["expr"]) - METRIC_NAMES
        assert not unknown, (rule["alert"], unknown)
        assert f"alertname: {rule['alert']}" in tests, f"{rule['alert']} has no unit test"
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert f"#### {anchor}".lower() in ops.lower() or \
            re.search(rf"^#+ .*{anchor}", ops, re.IGNORECASE | re.MULTILINE), \
            f"docs/operations.md has no section for {rule['alert']} (#{anchor})"


def test_grafana_dashboard_is_valid_and_queries_only_defined_metrics() -> None:
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "leadrouter.json").read_text())
    assert dash["uid"] == "leadrouter" and dash["panels"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert not _metrics_in(target["expr"]) - METRIC_NAMES, (panel["title"], target)
    for name in ("datasources/prometheus.yaml", "dashboards/leadrouter.yaml"):
        doc = yaml.load((DEPLOY / "grafana" / "provisioning" / name).read_text())
        assert doc["apiVersion"] == 1


def test_compose_runs_two_workers_redis_with_aof_prometheus_and_grafana() -> None:
    compose = yaml.load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) >= {"leadrouter", "redis", "prometheus", "grafana"}
    app = services["leadrouter"]
    assert app["build"]["dockerfile"] == "deploy/Dockerfile"
    assert "--workers" in app["command"] and "2" in app["command"]
    assert app["environment"]["LEADROUTER_REDIS_URL"].startswith("redis://redis:")
    assert any(v.endswith(":/rules:ro") for v in app["volumes"])
    assert "--appendonly" in services["redis"]["command"]
    prom_volumes = " ".join(services["prometheus"]["volumes"])
    assert "prometheus.yml" in prom_volumes and "alerts.yaml" in prom_volumes
    assert "./grafana/provisioning" in " ".join(services["grafana"]["volumes"])
    for volume in (v.split(":")[0] for s in services.values() for v in s.get("volumes", [])):
        if volume.startswith("."):
            assert (DEPLOY / volume).exists(), volume
    scrape = yaml.load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert scrape["scrape_configs"][0]["static_configs"][0]["targets"] == ["leadrouter:8080"]


def _manifests() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in _load_all(path):
            if doc.get("kind") == "Kustomization":
                continue
            assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name"), \
                path
            out[doc["kind"]] = doc
    return out


def test_kubernetes_manifests_have_what_they_need() -> None:
    m = _manifests()
    assert set(m) >= {"Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler",
                      "PodDisruptionBudget"}
    deploy = m["Deployment"]
    labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert deploy["spec"]["selector"]["matchLabels"].items() <= labels.items()
    pod = deploy["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    port_names = {p["name"] for p in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in port_names
    mounts = {v["name"]: v["mountPath"] for v in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["rules"] == "/rules"
    assert volumes["rules"]["configMap"]["name"] == m["ConfigMap"]["metadata"]["name"]
    cm_keys = set(m["ConfigMap"]["data"])
    assert {item["key"] for item in volumes["rules"]["configMap"]["items"]} == cm_keys
    assert m["Service"]["spec"]["selector"].items() <= labels.items()
    assert m["Service"]["spec"]["ports"][0]["targetPort"] in port_names
    assert m["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == \
        deploy["metadata"]["name"]
    assert m["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    kustomization = yaml.load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (DEPLOY / "k8s" / resource).exists(), resource


def test_the_configmap_ruleset_loads_and_its_cases_pass(tmp_path: Path) -> None:
    from router.engine.cases import load_cases, run_cases
    from router.engine.loader import load_directory

    directory = write_example_rules(tmp_path / "rules")
    ruleset = load_directory(directory)
    results = run_cases(ruleset, load_cases(directory))
    assert results and all(r.ok for r in results), [r.failures for r in results if not r.ok]


def test_dockerfile_is_multi_stage_non_root_with_rules_as_a_volume() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    stages = [ln for ln in lines if ln.upper().startswith("FROM ")]
    assert len(stages) >= 2 and "COPY --from=build" in text
    users = [ln.split()[1] for ln in lines if ln.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r'^VOLUME .*"/rules"', text, re.MULTILINE)
    assert "LEADROUTER_RULES_DIR=/rules" in text
    assert "uv sync --locked" in text
    for copied in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.MULTILINE):
        for source in copied.split():
            assert (ROOT / source.rstrip("/")).exists(), source


@pytest.mark.parametrize("path", sorted(p.relative_to(DEPLOY).as_posix()
                                        for p in DEPLOY.rglob("*")
                                        if p.suffix in (".yaml", ".yml", ".json")))
def test_every_yaml_and_json_file_parses(path: str) -> None:
    full = DEPLOY / path
    if full.suffix == ".json":
        json.loads(full.read_text())
    else:
        assert _load_all(full)
