"""The house rules of docs/architecture.md, checked on the code itself.

Layers, from the top: app → api → services → plugins / intake / observability → state →
settings → engine. A module may import its own package and the layers below it, never one
above (an "upward" import), and no group of modules may import each other in a circle. Every
import counts, including the ones under ``if TYPE_CHECKING:`` and inside functions: a lazy
import is still a dependency. The SDK and the example plugins never import the service.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The rank of each top-level part of router/ (higher may import lower, never the reverse).
RANKS = {
    "engine": 0,
    "settings": 1,
    "state": 2,
    "observability": 3,
    "intake": 4,
    "plugins": 5,
    "services": 6,
    "api": 7,
    "app": 8,
    "testing": 8,  # router/testing.py: the plugin authors' test kit, wiring like app/
}
MAX_MODULE_LINES = 420  # the guideline is ~400
MAX_FUNCTION_LINES = 80


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _router_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((ROOT / "router").rglob("*.py"))}


def _imports(path: Path, name: str) -> Iterator[str]:
    """Every module of router/ that ``path`` (module ``name``) imports, anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            # `from router.x import y` may name the submodule router.x.y
            yield from (f"{base}.{a.name}" for a in node.names)


def _graph() -> dict[str, set[str]]:
    modules = _router_modules()
    return {name: {m for m in _imports(path, name) if m in modules and m != name}
            for name, path in modules.items()}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_upward_imports() -> None:
    upward = []
    for module, targets in _graph().items():
        here = RANKS.get(_part(module))
        for target in targets:
            there = RANKS.get(_part(target))
            if here is None or there is None:
                continue  # router/__init__ (the version) is below everything
            if there > here:
                upward.append(f"{module} -> {target}")
    assert upward == [], "imports that run up the layers (move the code down, or pass it in)"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_circles() -> None:
    assert _cycles(_graph()) == []


def test_the_circle_finder_finds_circles() -> None:
    # The check above passes on an empty answer; prove it can fail.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("folder", ["sdk", "plugins"])
def test_sdk_and_plugins_never_import_the_service(folder: str) -> None:
    offenders = []
    for path in (ROOT / folder).rglob("*.py"):
        if "tests" in path.parts:
            continue  # plugin tests may run a real service
        name = _module_name(path)
        if any(m == "router" or m.startswith("router.") for m in _imports(path, name)):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == [], "write plugins against leadrouter_sdk only"


def test_modules_and_functions_stay_small() -> None:
    """One concept per module and functions that fit on a screen: the guideline of ~400
    lines a module and ~80 a function in router/."""
    too_long = []
    for name, path in _router_modules().items():
        text = path.read_text("utf-8")
        lines = text.count("\n")
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{name}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {length} lines")
    assert too_long == [], "split by meaning (docs/architecture.md, 'Where a new feature goes')"


def test_nothing_cites_the_starting_sketch() -> None:
    """The design sketch the project started from is not in the repository; the project's own
    picture is docs/architecture.md."""
    sketch = "DESIGN" + ".md"  # spelled apart so this file does not cite it either
    tracked = [p for p in ROOT.rglob("*")
               if p.is_file() and p.suffix in {".py", ".md", ".toml", ".yaml", ".lua"}
               and not {".venv", ".bench", ".git", "node_modules"} & set(p.parts)]
    citing = [str(p.relative_to(ROOT)) for p in tracked if sketch in p.read_text("utf-8")]
    assert citing == [], "cite docs/architecture.md instead"


def _missing_parts(doc: str) -> list[str]:
    """The packages and top-level modules of router/ that the layout tree in ``doc`` (the
    code block starting with ``router/``) lacks."""
    start = doc.index("```\nrouter/")
    tree = doc[start:doc.index("```", start + 3)]
    named = {line.split()[0] for line in tree.splitlines() if line.startswith("  ")
             and not line.startswith("   ")}
    parts = {f"{p.name}/" if p.is_dir() else p.name for p in (ROOT / "router").iterdir()
             if (p.is_dir() and (p / "__init__.py").exists())
             or (p.suffix == ".py" and p.name != "__init__.py")}
    return sorted(parts - named)


@pytest.mark.parametrize("path", ["docs/architecture.md", "README.md"])
def test_layout_trees_show_every_part_of_router(path: str) -> None:
    text = (ROOT / path).read_text("utf-8")
    assert _missing_parts(text) == [], f"add them to {path}"
    assert "engine/" in _missing_parts(text.replace("  engine/", "  motor/"))  # it can fail


def test_architecture_doc_draws_the_checked_layer_order() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text("utf-8")
    order = sorted((r, n) for n, r in RANKS.items() if n != "testing")
    drawn = " ─► ".join(name for _, name in reversed(order))
    assert drawn in doc, "docs/architecture.md draws the layers in another order"
