"""Helpers for the operations tests: the real tools (promtool, prometheus) from Debian's
``prometheus`` package. Outside CI a missing tool skips the test; in CI (``CI=true``) it fails,
because .ci/run installs the package and a silently skipped check is no check."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from _ci import unavailable

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = (f"{name} is not installed (Debian: apt-get install prometheus); "
                   ".ci/run installs it")
        unavailable(message)  # skip, or fail in CI (tests/_ci.py)
    return path


def promtool(*args: str, stdin: str | None = None, cwd: Path | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([tool("promtool"), *args], input=stdin, capture_output=True,
                            text=True, cwd=cwd, timeout=timeout, check=False)
    assert result.returncode == 0, f"promtool {' '.join(args)} failed:\n{result.stdout}\n" \
                                   f"{result.stderr}"
    return result


def write_example_rules(directory: Path) -> Path:
    """The example ruleset of deploy/k8s/configmap-rules.yaml, as files (small, with cases)."""
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load((DEPLOY / "k8s" / "configmap-rules.yaml").read_text())["data"]
    for key, text in data.items():
        path = directory / ("tests/cases.yaml" if key == "tests.cases.yaml" else key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class InThreadService:
    """The real app (create_app) on a real uvicorn server in a background thread."""

    def __init__(self, **settings: object) -> None:
        import uvicorn

        from router.app.application import create_app
        from router.settings import Settings

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(Settings(**settings)),  # type: ignore[arg-type]
                                host="127.0.0.1", port=self.port, lifespan="on",
                                log_level="warning", access_log=False, loop="asyncio")
        self.server = uvicorn.Server(config)

    def __enter__(self) -> InThreadService:
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn exited during start-up"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples ``name`` whose labels include ``labels`` in an exposition text."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v
                                           for k, v in labels.items()):
                total += sample.value
    return total


LEAD = {"email": "jane.doe@bigco.example", "first_name": "Jane", "last_name": "Doe",
        "title": "VP Sales", "employees": 5000, "country": "US", "budget": 100000,
        "phone": "+1 415 555 0100"}
