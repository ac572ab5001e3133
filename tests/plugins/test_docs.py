"""docs/plugins.md stays in step with the code: one section per hookspec with its exact
signature, every setting documented, and the tutorial's plugin and tests actually work."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any

from leadrouter_sdk.testing import make_lead

from router.plugins.host import HOOKS, hook_signatures
from router.settings import ENV_PREFIX, Settings
from router.testing import Harness

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def _sections(text: str) -> dict[str, str]:
    """``### `name` `` sections of the Hooks chapter → their text."""
    hooks = text.split("\n## Hooks\n", 1)[1].split("\n## ", 1)[0]
    parts = re.split(r"^### `([a-z_]+)`\n", hooks, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def documented_signature(name: str) -> str:
    sig = hook_signatures()[name]
    params = []
    for i, p in enumerate(sig.parameters.values()):
        star = "*, " if i == 0 and p.kind is p.KEYWORD_ONLY else ""
        params.append(f"{star}{p.name}: {p.annotation}")
    return f"def {name}({', '.join(params)}) -> {sig.return_annotation}"


def test_every_hookspec_is_documented_with_its_exact_signature() -> None:
    sections = _sections(DOC.read_text(encoding="utf-8"))
    assert list(sections) == list(HOOKS), "one section per hook, in the hookspec order"
    for name, body in sections.items():
        block = re.search(r"```python\n(.*?)\n```", body, flags=re.S)
        assert block, f"section {name}: no signature block"
        assert block.group(1).strip() == documented_signature(name), (
            f"docs/plugins.md: the signature of {name} differs from the hookspec; "
            f"write: {documented_signature(name)}")


def test_every_plugin_setting_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    names = [n for n in Settings.__struct_fields__
             if n.startswith(("plugin", "outbox"))]
    assert len(names) >= 11
    for name in names:
        assert f"`{ENV_PREFIX}{name.upper()}`" in text, f"{name} is not in docs/plugins.md"


def _block(text: str, first_line: str) -> str:
    for block in re.findall(r"```python\n(.*?)```", text, flags=re.S):
        if block.startswith(first_line):
            return str(block)
    raise AssertionError(f"no code block starting with {first_line!r}")


def test_the_tutorial_plugin_and_its_tests_work() -> None:
    text = DOC.read_text(encoding="utf-8")
    plugin = types.ModuleType("leadrouter_title_score")
    exec(_block(text, "# plugins/title-score/leadrouter_title_score/__init__.py"),
         plugin.__dict__)
    tests: dict[str, Any] = {}
    code = _block(text, "# plugins/title-score/tests/test_title_score.py")
    code = code.replace("from leadrouter_title_score import TitleScore", "")
    exec(code, {"TitleScore": plugin.TitleScore}, tests)
    ran = 0
    for name, fn in tests.items():
        if name.startswith("test_"):
            fn(Harness, make_lead)
            ran += 1
    assert ran == 2
