"""The console uses the services' public names only: every name a console module imports from
a ``router.services`` module is in that module's ``__all__`` (a private or unlisted name is a
dependency nobody promised to keep)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

CONSOLE = Path(__file__).resolve().parents[2] / "router" / "api" / "console"


def unlisted_imports(directory: Path = CONSOLE) -> list[str]:
    problems = []
    for path in sorted(directory.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.module
                    and node.module.startswith("router.services.")):
                continue
            public = getattr(importlib.import_module(node.module), "__all__", None)
            assert public is not None, f"{node.module} has no __all__"
            problems += [f"{path.name}: {alias.name} is not in {node.module}.__all__"
                         for alias in node.names if alias.name not in public]
    return problems


def test_console_imports_only_public_service_names() -> None:
    assert unlisted_imports() == []
