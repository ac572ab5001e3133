"""Tests that need an optional dependency skip where it is missing — and fail in CI.

The durable-rules engine is the one such dependency that `uv sync` installs but that cannot load
everywhere (its C extension needs Python < 3.13): on another interpreter its tests would skip
quietly, differential checks included. Here durable-rules is hidden (a module of the same name
that raises ImportError, first on the path) and pytest run on those tests, as CI runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUIRKS = "backends/durable/tests/test_quirks.py"
ON_BOTH = "tests/services/test_rules.py::test_a_ruleset_durable_cannot_run_is_rejected"


def _pytest(tmp_path: Path, *targets: str, ci: bool) -> subprocess.CompletedProcess[str]:
    hidden = tmp_path / "hidden"
    hidden.mkdir(exist_ok=True)
    (hidden / "durable_rules_engine.py").write_text('raise ImportError("hidden by the test")\n')
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(hidden)
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", *targets], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300, check=False)


def test_missing_durable_rules_skips_outside_ci(tmp_path: Path) -> None:
    run = _pytest(tmp_path, QUIRKS, ON_BOTH, ci=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "durable-rules is not importable" in run.stdout, run.stdout
    assert "durable-rules unavailable" in run.stdout, run.stdout
    assert " passed" not in run.stdout.splitlines()[-1], run.stdout  # all skipped


def test_missing_durable_rules_fails_in_ci(tmp_path: Path) -> None:
    run = _pytest(tmp_path, QUIRKS, ci=True)
    assert run.returncode != 0, run.stdout
    assert "error" in run.stdout.splitlines()[-1], run.stdout
    assert "durable-rules is not importable" in run.stdout, run.stdout
    run = _pytest(tmp_path, ON_BOTH, ci=True)
    assert run.returncode != 0, run.stdout
    assert "1 failed" in run.stdout.splitlines()[-1], run.stdout
    assert "durable-rules unavailable" in run.stdout, run.stdout


def test_the_interpreter_is_pinned() -> None:
    # uv picks the interpreter from .python-version; the pin is the version mypy checks for
    # and the one these tests run on (durable-rules loads on it).
    pinned = (ROOT / ".python-version").read_text().strip()
    assert pinned == "3.11"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'python_version = "{pinned}"' in pyproject
    assert 'requires-python = ">=3.11"' in pyproject
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == pinned
