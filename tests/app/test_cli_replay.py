"""``leadrouter rules replay``: its errors (issue 17, item 7) against a real Valkey — rules that
fail ``rules check`` give the same file:line lines and nothing is replayed, an empty window
says "0 leads in window" and exits 0, an unreachable Redis is a clear message and exit 1 —
and its options. The report itself: tests/api/test_replay.py (CLI and API side by side)."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from _rules import SERVICE_RULES
from _service import free_port, write_rules

from router.app.cli import main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_rules_failing_check_give_the_same_errors_and_nothing_is_replayed(
        tmp_path: Path) -> None:
    broken = SERVICE_RULES["scoring.yaml"].replace('"employees >= 1000"', '"employees >= "')
    rules = write_rules(tmp_path / "rules", {"scoring.yaml": broken})
    check = run("rules", "check", str(rules))
    # An unreachable Redis too: the rules are checked first, Redis is never asked.
    code, out, err = run("rules", "replay", str(rules), "--redis-url",
                         f"redis://127.0.0.1:{free_port()}/0")
    assert (code, out) == (1, check[1]) and check[0] == 1
    assert "scoring.yaml:3:" in out
    assert "Redis" not in err


def test_empty_window_says_so_and_exits_0(redis_url: str, rules_dir: Path) -> None:
    code, out, err = run("rules", "replay", str(rules_dir), "--redis-url", redis_url)
    assert (code, out) == (0, "0 leads in window\n"), err
    code, out, err = run("rules", "replay", str(rules_dir), "--redis-url", redis_url,
                         "--format", "json", "--since", "7d")
    assert code == 0 and "0 leads in window" in err
    report = json.loads(out)
    assert (report["replayed"], report["changed"], report["skipped"]["count"]) == (0, 0, 0)


def test_unreachable_redis_is_a_clear_error(rules_dir: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    code, out, err = run("rules", "replay", str(rules_dir), "--redis-url", url)
    assert code == 1 and out == ""
    assert f"cannot reach Redis at {url}" in err and "--redis-url" in err


def test_no_data_dir_is_a_clear_error(rules_dir: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEADROUTER_REDIS_URL", raising=False)
    code, _, err = run("rules", "replay", str(rules_dir), "--data-dir",
                       str(tmp_path / "nothing"))
    assert code == 1 and "no data dir" in err and "--redis-url" in err


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "last week"], "neither a duration nor a timestamp"),
    (["--since", "1d", "--until", "2d"], "is not before until"),
    (["--limit", "0"], "positive number"),
    (["--rules-version", "abc"], "write VERSION=DIR"),
    (["--rules-version", "deadbeef0=RULES"], "that directory's rules are version"),
])
def test_bad_options(redis_url: str, rules_dir: Path, args: list[str], message: str) -> None:
    args = [a.replace("RULES", str(rules_dir)) for a in args]
    code, out, err = run("rules", "replay", str(rules_dir), "--redis-url", redis_url, *args)
    assert code == 2 and out == "" and message in err


def test_report_to_a_file_in_every_format(redis_url: str, rules_dir: Path,
                                          tmp_path: Path) -> None:
    for fmt, start in (("html", "<!doctype html>"), ("markdown", "# Replay report"),
                       ("json", "{"), ("text", "0 leads in window")):
        target = tmp_path / f"report.{fmt}"
        code, out, err = run("rules", "replay", str(rules_dir), "--redis-url", redis_url,
                             "--format", fmt, "--output", str(target))
        assert code == 0 and out == "", err
        assert target.read_text().startswith(start)
        assert f"report written to {target}" in err
