"""``leadrouter serve`` as users start it: what its start-up lines say is true — how tools reach
the embedded Valkey, and where the metrics live."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import redis
from _service import AUTH, ServiceProcess, lead, write_rules


def _start_line(log: str, prefix: str) -> str:
    return next(line for line in log.splitlines() if line.startswith(f"leadrouter: {prefix}"))


def test_one_worker_start_up_names_socket_only_valkey_and_where_metrics_really_are(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = ServiceProcess(rules_dir=write_rules(tmp_path / "rules"), data_dir=data,
                          log_path=tmp_path / "serve.log")
    with proc, httpx.Client(base_url=proc.url, headers=AUTH, timeout=10) as client:
        assert client.post("/v1/leads", json=lead()).status_code == 201
        assert client.get("/metrics").status_code == 200
        log = proc.log_path.read_text()
        socket_path = data.resolve() / "valkey.sock"
        valkey_line = _start_line(log, "embedded Valkey at")
        assert f"tools connect with `valkey-cli -s {socket_path}`" in valkey_line
        assert "-p " not in valkey_line
        assert (data / "valkey.port").read_text().strip() == "0"  # no TCP port opened
        with redis.Redis(unix_socket_path=str(socket_path)) as tool:
            assert tool.ping()
        serving = _start_line(log, "serving on")
        named = re.search(r"metrics in (\S+) \(", serving)
        files = list((data / "metrics").glob("*.db"))
        if named:  # it names a folder: the worker's metrics are there
            assert Path(named.group(1)).resolve() == (data / "metrics").resolve()
            assert files, serving
        else:  # in this process's memory: then no folder is claimed, and none is written
            assert "metrics in this process's memory (one worker)" in serving
            assert files == []


def test_an_embedded_port_opens_tcp_and_the_start_up_line_says_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = ServiceProcess(rules_dir=write_rules(tmp_path / "rules"), data_dir=data,
                          log_path=tmp_path / "serve.log", workers=2,
                          env={"LEADROUTER_EMBEDDED_PORT": "0"})
    with proc:
        port = int((data / "valkey.port").read_text())
        assert port > 0
        log = proc.log_path.read_text()
        valkey_line = _start_line(log, "embedded Valkey at")
        assert f"or valkey-cli -h 127.0.0.1 -p {port}`" in valkey_line
        with redis.Redis(host="127.0.0.1", port=port) as tool:
            assert tool.ping()
        serving = _start_line(log, "serving on")
        assert f"metrics in {data / 'metrics'} (one file set per process" in serving
