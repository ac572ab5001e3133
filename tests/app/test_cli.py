"""``leadrouter rules check|test|explain``: what ops run before a rule change goes live."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from router.app.cli import main

RULES = Path(__file__).resolve().parents[2] / "rules"


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_check_accepts_the_shipped_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", str(RULES)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: 94 rules") and "73 test cases" in out


def _break(rules: Path) -> None:
    _edit(rules / "scoring.yaml", "- id: fit.industry.target\n",
          "- id: fit.industry.target\n      weight: 3\n")  # unknown key
    education = "null and matches(industry, \"(?i)\\\\b(education"
    _edit(rules / "scoring.yaml", f"when: 'industry != {education}",
          f"when: 'industri != {education}")  # a misspelt name
    _edit(rules / "routing.yaml", "overflow: {pool: emea}", "overflow: {pool: emea-typo}")


def test_check_reports_every_problem_with_its_location(
        rules_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _break(rules_copy)
    assert main(["rules", "check", str(rules_copy)]) == 1
    out = capsys.readouterr().out
    lines = [line.strip() for line in out.splitlines() if ".yaml:" in line]
    assert len(lines) >= 3, out
    scoring = str(rules_copy / "scoring.yaml")
    assert any(line.startswith(scoring + ":") and "fit.industry.target" in line
               and "weight" in line for line in lines), out
    assert any("fit.industry.poor" in line and "industri" in line and "industry" in line
               for line in lines), out  # did you mean
    assert any(line.startswith(str(rules_copy / "routing.yaml") + ":") and "emea-typo" in line
               for line in lines), out


def test_check_as_json(rules_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _break(rules_copy)
    assert main(["rules", "check", str(rules_copy), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    by_rule = {e.get("rule"): e for e in report["errors"]}
    assert "fit.industry.target" in by_rule and "fit.industry.poor" in by_rule
    assert all(isinstance(e["line"], int) and e["file"].endswith(".yaml")
               for e in report["errors"])
    assert main(["rules", "check", str(RULES), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_test_runs_the_cases_and_filters_with_k(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "test", str(RULES)]) == 0
    assert capsys.readouterr().out.strip().endswith("73 passed, 0 failed")
    assert main(["rules", "test", str(RULES), "-k", "oregon"]) == 0
    assert capsys.readouterr().out.strip().endswith("1 passed, 0 failed")
    assert main(["rules", "test", str(RULES), "-k", "no such case"]) == 1


def test_a_failing_case_shows_expected_and_actual(
        rules_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(rules_copy / "tests" / "territories.yaml", "expect: {territory: na-west}",
          "expect: {territory: na-east}")
    assert main(["rules", "test", str(rules_copy)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "California" in out
    assert "territory: expected 'na-east', got 'na-west'" in out
    assert out.strip().endswith("72 passed, 1 failed")


def test_null_in_expect_asserts_absence(rules_copy: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    (rules_copy / "tests" / "absence.yaml").write_text(
        "cases:\n"
        "  - name: absence, a nurture lead has no SLA\n"
        "    lead: {email: x@nowhere.example}\n"
        "    expect: {status: nurture, sla: null}\n"
        "  - name: absence, an SQL has one so null fails\n"
        "    lead: {email: ann@acme.example, title: VP of Sales, employees: 5000,\n"
        "           country: US, state: CA, budget: 100000}\n"
        "    expect: {sla: null}\n"
        "  - name: absence, a key left out is not checked\n"
        "    lead: {email: ann@acme.example, title: VP of Sales, employees: 5000,\n"
        "           country: US, state: CA, budget: 100000}\n"
        "    expect: {status: sql}\n")
    assert main(["rules", "test", str(rules_copy), "-k", "nurture lead"]) == 0
    assert main(["rules", "test", str(rules_copy), "-k", "left out"]) == 0
    capsys.readouterr()
    assert main(["rules", "test", str(rules_copy), "-k", "null fails"]) == 1
    assert "sla: expected none, got 'sql-enterprise'" in capsys.readouterr().out


def test_explain_prints_the_decision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lead = tmp_path / "lead.json"
    lead.write_text(json.dumps({"email": "ann@acme.example", "title": "VP of Sales",
                                "employees": 5000, "country": "US", "state": "CA",
                                "budget": 100000}))
    now = ["--now", "2026-01-06T15:00:00+00:00"]
    assert main(["rules", "explain", str(lead), "--rules", str(RULES), *now]) == 0
    out = capsys.readouterr().out
    assert "status" in out and "fit.size.enterprise" in out and "territories: na-west" in out
    assert main(["rules", "explain", str(lead), "--rules", str(RULES), "--format", "json",
                 *now]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["evaluation"]["territory"] == "na-west"
    assert {s["stage"] for s in report["explanation"]} >= {"scoring", "qualification"}
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert main(["rules", "explain", str(bad), "--rules", str(RULES)]) == 2
    assert "cannot read the lead" in capsys.readouterr().err


def test_check_reads_the_intake_sections_as_the_service_does(
        rules_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # forms:/sources: are compiled by router.intake, which the loader is handed (the engine
    # does not import it): a mistake there fails the check like one in the rules
    _edit(rules_copy / "intake.yaml", "thank_you:", "thank_yu:")
    assert main(["rules", "check", str(rules_copy)]) == 1
    out = capsys.readouterr().out
    assert str(rules_copy / "intake.yaml") + ":" in out and "did you mean `thank_you`?" in out


# --- the command as users run it (a subprocess: real stdout, stderr, pipes, environment) -------

LEADROUTER = Path(sys.executable).with_name("leadrouter")
LEAD = {"email": "ann@acme.example", "title": "VP of Sales", "employees": 5000, "country": "US",
        "state": "CA", "budget": 100000}


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LEADROUTER), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, check=False)


def test_help_is_plain_text_and_serve_flags_say_what_they_do_and_their_default() -> None:
    top = _run("--help")
    assert top.returncode == 0
    assert "``" not in top.stdout and ":func:" not in top.stdout, top.stdout
    assert "leadrouter rules check [DIR]" in top.stdout and "--rules DIR" in top.stdout
    serve = _run("serve", "--help")
    assert serve.returncode == 0
    text = " ".join(serve.stdout.split())  # argparse wraps lines
    for flag, env, default in [("--host HOST", "HOST", "127.0.0.1"),
                               ("--port PORT", "PORT", "8080"),
                               ("--workers WORKERS", "WORKERS", "1"),
                               ("--rules DIR", "RULES_DIR", "rules"),
                               ("--redis-url URL", "REDIS_URL", "an embedded valkey-server"),
                               ("--data-dir DIR", "DATA_DIR", ".leadrouter")]:
        assert f"(default: $LEADROUTER_{env}, else {default}" in text, (flag, text)
        described = text.split(f"{flag} ", 2)[-1]
        assert not described.startswith("-") and not described.startswith("(default"), flag


def test_a_bad_setting_is_one_line_with_the_fix() -> None:
    run = _run("rules", "check", str(RULES), env={"LEADROUTER_ENGINE": "bogus"})
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert run.stderr.splitlines() == [
        "leadrouter: LEADROUTER_ENGINE: 'bogus' is not one of compiled, durable — fix the "
        "value (see docs/operations.md)"], run.stderr


def test_explain_into_a_closed_pipe_stops_quietly(tmp_path: Path) -> None:
    lead = tmp_path / "lead.json"
    lead.write_text(json.dumps(LEAD))
    # `leadrouter rules explain lead.json | head -0`: the reader is gone before the first write
    with subprocess.Popen([str(LEADROUTER), "rules", "explain", str(lead), str(RULES)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 141  # 128 + SIGPIPE, as a shell reports it
    assert err == "", err


def test_every_rule_command_takes_the_directory_as_argument_or_option(
        rules_copy: Path, tmp_path: Path) -> None:
    _edit(rules_copy / "tests" / "territories.yaml", "expect: {territory: na-west}",
          "expect: {territory: na-east}")  # so that which directory was read shows
    lead = tmp_path / "lead.json"
    lead.write_text(json.dumps({**LEAD, "email": "bob@acme.example"}))
    for args in (["check", str(rules_copy)], ["check", "--rules", str(rules_copy)]):
        run = _run("rules", *args, "--format", "json")
        assert run.returncode == 0 and json.loads(run.stdout)["cases"] == 73, run
    for args in (["test", str(rules_copy)], ["test", "--rules", str(rules_copy)]):
        run = _run("rules", *args)
        assert run.returncode == 1 and run.stdout.strip().endswith("72 passed, 1 failed"), run
    for args in (["explain", str(lead), str(RULES)], ["explain", str(lead), "--rules", str(RULES)]):
        run = _run("rules", *args, "--now", "2026-01-06T15:00:00+00:00")
        assert run.returncode == 0 and "territories: na-west" in run.stdout, run
    both = _run("rules", "test", str(RULES), "--rules", str(rules_copy))
    assert both.returncode == 2 and "two rules directories" in both.stderr, both.stderr


def test_check_says_the_cases_are_found_not_run() -> None:
    run = _run("rules", "check", str(RULES))
    assert run.returncode == 0
    assert "73 test cases found" in run.stdout and "leadrouter rules test" in run.stdout


def test_serve_names_the_file_of_a_failing_case_once(rules_copy: Path, tmp_path: Path) -> None:
    _edit(rules_copy / "tests" / "territories.yaml", "expect: {territory: na-west}",
          "expect: {territory: na-east}")
    run = _run("serve", "--rules", str(rules_copy), "--data-dir", str(tmp_path / "data"))
    assert run.returncode == 1, run.stderr
    failing = [line.strip() for line in run.stderr.splitlines() if "na-east" in line]
    assert len(failing) == 1, run.stderr
    assert failing[0].startswith(str(rules_copy / "tests" / "territories.yaml") + ":"), failing
    assert f"{rules_copy}: " not in run.stderr, run.stderr  # not the directory, then the file
