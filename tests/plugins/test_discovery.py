"""Finding plugins named in ``LEADROUTER_PLUGINS``: a module that holds its plugin as a class (as
docs/plugins.md writes one), and `leadrouter rules explain` showing what such a plugin adds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from router.plugins.host import PluginHost
from router.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
LEADROUTER = Path(sys.executable).with_name("leadrouter")

# As docs/plugins.md's tutorial writes a plugin: a class whose methods are @hookimpl.
CLASS_PLUGIN = '''\
from leadrouter_sdk import Contribution, Lead, hookimpl


class TitleScore:
    @hookimpl
    def score(self, lead: Lead) -> Contribution | None:
        if "vp" in (lead.title or "").lower():
            return Contribution(rule="title.decider", group="bant", points=7,
                                reason="decision maker")
        return None


class Helper:  # not a plugin: no hooks
    pass
'''

TWO_CLASSES = CLASS_PLUGIN + '''

class Another:
    @hookimpl
    def enrich(self, lead: Lead) -> None:
        return None
'''

NO_HOOKS = "VALUE = 1\n"


@pytest.fixture
def modules(tmp_path: Path) -> Iterator[Path]:
    for name, text in {"lr_class_plugin": CLASS_PLUGIN, "lr_two_classes": TWO_CLASSES,
                       "lr_no_hooks": NO_HOOKS}.items():
        (tmp_path / f"{name}.py").write_text(text)
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("lr_class_plugin", "lr_two_classes", "lr_no_hooks"):
            sys.modules.pop(name, None)


def test_a_module_holding_its_plugin_as_a_class_has_that_class_hooks(modules: Path) -> None:
    host = PluginHost.from_settings(Settings(plugins="lr_class_plugin"), entry_points=False,
                                    metrics=False)
    (info,) = host.plugins()
    assert (info.name, info.status, info.hooks) == ("lr_class_plugin", "active", ("score",))
    assert info.target == "lr_class_plugin:TitleScore"
    assert host.has("score")


def test_a_module_with_no_single_plugin_class_fails_saying_what_to_write(
        modules: Path) -> None:
    host = PluginHost()
    host.discover(entry_points=False, modules=["lr_two_classes", "lr_no_hooks",
                                               "lr_two_classes:Another"])
    infos = {i.name: i for i in host.plugins()}
    two = infos["lr_two_classes"]
    assert two.status == "failed" and two.hooks == ()
    assert "`lr_two_classes:Another` or `lr_two_classes:TitleScore`" in (two.error or "")
    none = infos["lr_no_hooks"]
    assert none.status == "failed"
    assert "`lr_no_hooks:ClassName`" in (none.error or "")
    assert infos["lr_two_classes:Another"].hooks == ("enrich",)  # naming the class works


def test_rules_explain_shows_plugin_contributions_with_float_points(modules: Path,
                                                                     tmp_path: Path) -> None:
    lead = tmp_path / "lead.json"
    lead.write_text(json.dumps({"email": "ann@acme.example", "title": "VP of Sales",
                                "employees": 5000, "country": "US", "state": "CA"}))
    env = {**os.environ, "PYTHONPATH": str(modules), "LEADROUTER_PLUGINS": "lr_class_plugin",
           "LEADROUTER_PLUGINS_BLOCK": "*"}
    args = [str(LEADROUTER), "rules", "explain", str(lead), "--rules", str(ROOT / "rules"),
            "--now", "2026-01-06T15:00:00+00:00"]

    def explain(*more: str, **extra: str) -> str:
        out = subprocess.run([*args, *more], capture_output=True, text=True, timeout=60,
                             env={**env, **extra}, check=False)
        assert out.returncode == 0, out.stderr
        return out.stdout

    report = json.loads(explain("--format", "json"))
    score = report["evaluation"]["score"]
    mine = [c for c in score["contributions"] if c["rule"] == "title.decider"]
    assert mine == [{"rule": "title.decider", "group": "bant", "points": 7.0,
                     "reason": "decision maker"}]
    assert '"points":7.0' in explain("--format", "json").replace(" ", "")
    without = json.loads(explain("--format", "json", LEADROUTER_PLUGINS=""))
    assert score["total"] == without["evaluation"]["score"]["total"] + 7
    assert "+7  title.decider  [bant]" in explain()
