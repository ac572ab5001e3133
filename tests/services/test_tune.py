"""Score calibration and ``rules tune`` on a generated dataset with a known ground truth
(tests/_outcomes_data.py), through the real service and a real Valkey: leads posted to
``POST /v1/leads``, outcomes to ``POST /v1/leads/{id}/outcome``, the report read from
``GET /v1/scoring/calibration`` and the CLI (``leadrouter rules calibrate`` / ``tune``) run
against the service's Redis. 2,000 planted leads + 800 pure-noise leads: 50-75 s on the
shared 2-core machine (posting the leads is most of it).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import redis
from _outcomes_data import PLANTED, Planted, dataset, post_leads, post_outcomes
from _service import ADMIN_TOKEN, AUTH, ThreadServer, assert_problem

from router.app.cli import main
from router.services.calibration import NO_GRADE
from router.services.calibration_stats import wilson
from router.state.embedded import EmbeddedValkey

SHIPPED = Path(__file__).resolve().parents[2] / "rules"
STRONG = "bant.timeline.immediate"


class Env(NamedTuple):
    server: ThreadServer
    redis_url: str
    rules: Path
    leads: list[Planted]


def _environment(tmp: Path, valkey: EmbeddedValkey, dbs: Iterator[int], *, n: int, seed: int,
                 noise: bool) -> Iterator[Env]:
    from router.app.application import create_app
    from router.settings import Settings

    rules = tmp / "rules"
    shutil.copytree(SHIPPED, rules)
    url = f"redis://127.0.0.1:{valkey.port}/{next(dbs)}"
    with redis.Redis.from_url(url) as admin:
        admin.flushdb()
    server = ThreadServer(create_app(Settings(redis_url=url, admin_token=ADMIN_TOKEN,
                                              reload_poll_seconds=0, rules_dir=str(rules))))
    server.start()
    try:
        leads = dataset(n, seed=seed, noise=noise)
        post_leads(server.url, leads)
        post_outcomes(server.url, leads)
        yield Env(server, url, rules, leads)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory, valkey_server: EmbeddedValkey,
            _redis_dbs: Iterator[int]) -> Iterator[Env]:
    yield from _environment(tmp_path_factory.mktemp("planted"), valkey_server, _redis_dbs,
                            n=2000, seed=7, noise=False)


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_calibration_counts_match_the_data_and_find_the_planted_lift(planted: Env) -> None:
    with planted.server.client(headers=AUTH) as client:
        response = client.get("/v1/scoring/calibration", params={"target": "opportunity"})
    assert response.status_code == 200, response.text
    report = response.json()
    leads = planted.leads
    assert report["leads"] == len(leads)
    assert report["converted"] == sum(p.converts for p in leads)
    by_grade: Counter[str] = Counter()
    converted: Counter[str] = Counter()
    for p in leads:
        by_grade[p.grade or NO_GRADE] += 1
        converted[p.grade or NO_GRADE] += p.converts
    assert {b["key"]: (b["leads"], b["converted"]) for b in report["by_grade"]} == {
        g: (by_grade[g], converted[g]) for g in by_grade}
    for bucket in report["by_grade"]:
        assert (bucket["low"], bucket["high"]) == pytest.approx(
            wilson(bucket["converted"], bucket["leads"]))
    rules = {r["rule"]: r for r in report["rules"]}
    strong = rules[STRONG]
    matched = [p for p in leads if STRONG in p.rules]
    assert strong["matched"] == len(matched)
    assert strong["matched_converted"] == sum(p.converts for p in matched)
    # The true rate ratio of the planted rule is its multiplier: inside the 95% interval.
    assert strong["low"] <= PLANTED[STRONG] <= strong["high"]
    assert strong["verdict"] == "ok" and strong["low"] > 1
    # Engagement rules never matched (no events were sent): too little data to judge.
    assert rules["eng.demo"]["matched"] == 0
    assert rules["eng.demo"]["verdict"] == "too little data"
    top = report["top"]
    assert top["grades"] == ["A", "B"]
    in_top = [p for p in leads if p.grade in ("A", "B")]
    assert top["lead_share"] == pytest.approx(len(in_top) / len(leads))
    assert top["recall"] == pytest.approx(sum(p.converts for p in in_top) / report["converted"])
    assert sum(c["leads"] for c in report["by_speed"]) == len(leads)
    assert sum(c["leads"] for c in report["by_pool"]) == len(leads)
    assert sum(b["leads"] for b in report["by_band"]) == len(leads)


def test_calibration_api_guards_and_bad_input(planted: Env) -> None:
    with planted.server.client() as client:
        assert_problem(client.get("/v1/scoring/calibration"), 401)
        bad = assert_problem(client.get("/v1/scoring/calibration",
                                        params={"target": "signed"}, headers=AUTH), 422)
        assert "opportunity" in bad["detail"] and "won" in bad["detail"]
        assert_problem(client.get("/v1/scoring/calibration", headers=AUTH,
                                  params={"since": "1d", "until": "30d"}), 422)
        assert_problem(client.get("/v1/scoring/calibration", headers=AUTH,
                                  params={"since": "yesterday"}), 422)
        key = client.post("/v1/admin/keys", headers=AUTH,
                          json={"name": "analyst", "source": "bi",
                                "scopes": ["viewer"]}).json()["key"]
        seen = client.get("/v1/scoring/calibration", params={"until": "1d"},
                          headers={"Authorization": f"Bearer {key}"})
        assert seen.status_code == 200, seen.text
        assert seen.json()["leads"] == 0  # the window ends before any lead arrived


def test_cli_calibrate_reports_what_the_api_does(planted: Env,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, "rules", "calibrate", str(planted.rules), "--redis-url",
                        planted.redis_url, "--format", "json")
    assert code == 0
    cli = json.loads(out)
    with planted.server.client(headers=AUTH) as client:
        api = client.get("/v1/scoring/calibration").json()
    for field in ("leads", "converted", "by_grade", "by_band", "rules", "top"):
        assert cli[field] == api[field], field
    code, out, _ = _cli(capsys, "rules", "calibrate", str(planted.rules), "--redis-url",
                        planted.redis_url, "--format", "markdown")
    assert code == 0 and "| grade | leads |" in out and STRONG in out


def test_tune_raises_holdout_auc_and_ranks_the_planted_rules_first(
        planted: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "proposed"
    code, out, err = _cli(capsys, "rules", "tune", str(planted.rules), "--redis-url",
                          planted.redis_url, "--output", str(out_dir), "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    result = report["result"]
    assert result["converted"] == sum(p.converts for p in planted.leads)
    assert result["auc_proposed"] > result["auc_current"]
    ranked = [r["rule"] for r in result["rules"]]
    assert set(ranked[:len(PLANTED)]) == set(PLANTED)
    significant = {r["rule"] for r in result["rules"] if r["significant"]}
    assert set(PLANTED) <= significant
    changed = set(report["changed"])
    assert STRONG in changed and changed <= significant  # the others keep their points
    # The candidate differs from the shipped scoring.yaml in `points:` lines only.
    before = (planted.rules / "scoring.yaml").read_text().splitlines()
    after = (out_dir / "scoring.yaml").read_text().splitlines()
    assert len(before) == len(after)
    diff = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert diff and all(a.strip().startswith("points:") and b.strip().startswith("points:")
                        for a, b in diff)
    assert len(diff) == len(changed)
    assert (out_dir / "tune-report.md").read_text().count("| ") > 10
    # The status transitions are those `rules replay` of the candidate reports.
    code, out, err = _cli(capsys, "rules", "replay", str(out_dir), "--redis-url",
                          planted.redis_url, "--format", "json")
    assert code == 0, err
    replay = json.loads(out)
    assert replay["replayed"] == report["replayed"] == len(planted.leads)
    assert {f"{t['from']} -> {t['to']}": t["count"] for t in replay["status_matrix"]
            if t["from"] != t["to"]} == report["transitions"]
    assert report["transitions"]  # raising the planted rules moves some leads up


def test_tune_refuses_with_too_few_conversions(planted: Env, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    won = sum(p.won for p in planted.leads)
    assert 0 < won < 200
    code, _, err = _cli(capsys, "rules", "tune", str(planted.rules), "--redis-url",
                        planted.redis_url, "--target", "won", "--output",
                        str(tmp_path / "out"))
    assert code == 1
    assert f"{won} lead(s) reached 'won'" in err and "at least 200" in err
    assert not (tmp_path / "out").exists()


def test_tune_without_scikit_learn_says_how_to_install(
        planted: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)  # import fails
    code, _, err = _cli(capsys, "rules", "tune", str(planted.rules), "--redis-url",
                        planted.redis_url, "--output", str(tmp_path / "out"))
    assert code == 1 and "pip install 'leadrouter[analytics]'" in err


def test_tune_on_pure_noise_proposes_no_change(
        tmp_path_factory: pytest.TempPathFactory, valkey_server: EmbeddedValkey,
        _redis_dbs: Iterator[int], capsys: pytest.CaptureFixture[str]) -> None:
    env: Any = _environment(tmp_path_factory.mktemp("noise"), valkey_server, _redis_dbs,
                            n=800, seed=11, noise=True)
    noise = next(env)
    try:
        out_dir = noise.rules.parent / "proposed"
        code, out, err = _cli(capsys, "rules", "tune", str(noise.rules), "--redis-url",
                              noise.redis_url, "--output", str(out_dir), "--format", "json")
        assert code == 0, err
        report = json.loads(out)
        assert report["result"]["converted"] >= 200
        assert report["changed"] == [] and report["transitions"] == {}
        assert not any(r["significant"] for r in report["result"]["rules"])
        assert (out_dir / "scoring.yaml").read_text() == \
            (noise.rules / "scoring.yaml").read_text()
    finally:
        env.close()
