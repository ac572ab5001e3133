"""router/state/scripts.py: every script is ``_lib.lua`` plus its own file, and a
``--!include`` library (the pool pick, ``lua/_pick.lua``) is pulled in exactly once."""

from __future__ import annotations

from router.state.scripts import SCRIPT_NAMES, load_scripts


def test_pick_library_is_included_once_where_asked() -> None:
    scripts = load_scripts()
    commit = scripts["commit"].source
    assert commit.count("local function pick_chain(") == 1
    assert not any(line.startswith("--!include") for line in commit.splitlines())
    for name in SCRIPT_NAMES:
        # every script still starts with the shared helpers
        assert "local function member_facts(" in scripts[name].source
