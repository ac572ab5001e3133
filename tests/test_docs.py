"""The documentation stays in step with the code (datasette-style documentation tests).

``docs/rules.md`` must document every function in ``BUILTINS`` (a ``### name(params)`` heading
whose parameters match the signature, with a ``when:`` example that calls it), every name a rule
can use (with its kind, and for stage outputs the stage that sets it), every rule-file section
and every key of each section, and every enumerated value (strategies, SLA clocks, breach
actions, statuses). Its examples are executable: blocks marked ``# example: loads`` load,
``# example: case`` blocks pass against the shipped rules, ``# example: refused`` blocks are
refused with exactly the documented error, and every other ``when:`` in a YAML block passes the
expression checker. ``README.md`` documents every setting with its default and every HTTP
endpoint the service serves.

The checkers return lists of problems instead of asserting, so the tests at the bottom can prove
that each one actually notices a missing piece (a function added without docs, ...).
"""

from __future__ import annotations

import re
import textwrap
import typing
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
import pytest
from ruamel.yaml import YAML

from router.engine import functions, names, schema
from router.engine.cases import Case, CaseState, Expect, load_case_texts, run_cases
from router.engine.errors import RulesetError
from router.engine.expr import ExprError, check
from router.engine.functions import BOOL, STR, Function
from router.engine.loader import load_directory, load_texts
from router.engine.ruleset import Ruleset
from router.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parent.parent
RULES_MD = ROOT / "docs" / "rules.md"
README = ROOT / "README.md"
RULES_README = ROOT / "rules" / "README.md"

# --------------------------------------------------------------------------------------------
# Markdown helpers: headings and fenced blocks (a `#` line inside a fence is not a heading)
# --------------------------------------------------------------------------------------------

_FENCE = re.compile(r"^(```+|~~~+)(.*)$")


def _lines_outside_fences(text: str) -> Iterator[tuple[int, str, bool]]:
    """(index, line, inside_fence) for every line."""
    fence: str | None = None
    for i, line in enumerate(text.splitlines()):
        m = _FENCE.match(line.strip())
        if fence is None and m:
            fence = m.group(1)
            yield i, line, True
        elif fence is not None and line.strip().startswith(fence):
            fence = None
            yield i, line, True
        else:
            yield i, line, fence is not None


def sections(text: str, level: int) -> dict[str, str]:
    """Heading text → body (up to the next heading of the same or a higher level)."""
    lines = text.splitlines()
    marks: list[tuple[int, int, str]] = []
    for i, line, fenced in _lines_outside_fences(text):
        m = re.match(r"^(#{1,6}) (.+?)\s*$", line)
        if m and not fenced:
            marks.append((i, len(m.group(1)), m.group(2)))
    out: dict[str, str] = {}
    for n, (i, lvl, title) in enumerate(marks):
        if lvl != level:
            continue
        end = next((j for j, lv, _ in marks[n + 1:] if lv <= level), len(lines))
        out[title] = "\n".join(lines[i + 1:end])
    return out


def section(text: str, level: int, title: str) -> str:
    found = sections(text, level)
    if title not in found:
        raise AssertionError(f"docs: no {'#' * level} {title} heading")
    return found[title]


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(info string, body) of every fenced code block."""
    blocks: list[tuple[str, str]] = []
    lines = text.splitlines()
    start: int | None = None
    info = ""
    for i, line, _ in _lines_outside_fences(text):
        m = _FENCE.match(line.strip())
        if m is None:
            continue
        if start is None:
            start, info = i, m.group(2).strip()
        else:
            blocks.append((info, "\n".join(lines[start + 1:i])))
            start = None
    return blocks


def yaml_blocks(text: str) -> list[str]:
    return [body for info, body in fenced_blocks(text) if info == "yaml"]


def _marker(body: str) -> str | None:
    """The ``# example: ...`` tag on a block's first line, if any."""
    first = body.lstrip().splitlines()[0] if body.strip() else ""
    m = re.match(r"#\s*example:\s*(\w+)", first)
    return m.group(1) if m else None


_YAML = YAML(typ="safe", pure=True)


def when_snippets(body: str) -> list[str]:
    """Every ``when:`` value in a YAML block, parsed (handles ``>-`` blocks, several per block)."""
    lines = body.splitlines()
    out = []
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)(?:- )?when:", line)
        if not m:
            continue
        indent = len(line) - len(line.lstrip(" -"))
        chunk = [line.strip().removeprefix("- ")]
        for nxt in lines[i + 1:]:
            if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                break
            chunk.append(nxt[indent:] if nxt.strip() else "")
        value = _YAML.load("\n".join(chunk))["when"]
        out.append(value)
    return out


def _stage_of(body: str, default: str = "scoring") -> str:
    m = re.search(r"(?:#\s*stage:\s*|\(stage:\s*)(\w+)", body)
    return m.group(1) if m else default


# --------------------------------------------------------------------------------------------
# The checkers
# --------------------------------------------------------------------------------------------

_SIG = re.compile(r"^(\w+)\((.*)\)$")


def documented_functions(text: str) -> dict[str, tuple[list[str], list[str], str]]:
    """``### name(a, b, kw=N)`` headings under ## Functions → (positional, keywords, body)."""
    out = {}
    for title, body in sections(section(text, 2, "Functions"), 3).items():
        m = _SIG.match(title.strip())
        if not m:
            continue
        params = [p.strip() for p in m.group(2).split(",") if p.strip()]
        positional = [p for p in params if "=" not in p]
        keywords = [p.split("=", 1)[0].strip() for p in params if "=" in p]
        out[m.group(1)] = (positional, keywords, body)
    return out


def function_problems(text: str, builtins: Mapping[str, Function] | None = None) -> list[str]:
    """Every function documented with a matching signature and an example that calls it."""
    builtins = functions.BUILTINS if builtins is None else builtins
    documented = documented_functions(text)
    problems = []
    for name, fn in builtins.items():
        if name not in documented:
            problems.append(f"function {name}() is not documented: add a `### {name}(...)` "
                            "section under ## Functions in docs/rules.md")
            continue
        positional, keywords, body = documented[name]
        if len(positional) != len(fn.params):
            problems.append(f"{name}(): docs show {len(positional)} parameter(s), the function "
                            f"takes {len(fn.params)}")
        if set(keywords) != set(fn.keywords):
            problems.append(f"{name}(): docs show keywords {sorted(keywords)}, the function "
                            f"takes {sorted(fn.keywords)}")
        examples = [w for b in yaml_blocks(body) for w in when_snippets(b)]
        if not any(re.search(rf"\b{name}\(", w) for w in examples):
            problems.append(f"{name}(): no `when:` example calling it in its section")
    for name in documented:
        if name not in builtins:
            problems.append(f"docs document {name}(), which is not a function")
    return problems


def _table_rows(text: str) -> dict[str, list[str]]:
    """First-column `name` of every markdown table row → the row's cells."""
    rows = {}
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"`([^`]+)`", cells[0])
        if m:
            rows[m.group(1)] = cells
    return rows


def names_problems(text: str) -> list[str]:
    """Every lead field, derived name and stage output in the ## Names tables, kinds right."""
    part = section(text, 2, "Names")
    tables = {title: _table_rows(body) for title, body in sections(part, 3).items()}
    problems = []

    def expect(table: str, name: str, cells: list[str | None]) -> None:
        rows = tables.get(table, {})
        if name not in rows:
            problems.append(f"`{name}` is missing from the {table} table in docs/rules.md")
            return
        for i, want in enumerate(cells, start=1):
            got = rows[name][i] if i < len(rows[name]) else None
            if want is not None and got != want:
                problems.append(f"{table} `{name}`: column {i + 1} says {got!r}, code says "
                                f"{want!r}")

    for name, kind in names.LEAD_FIELDS.items():
        expect("Lead fields", name, [kind])
    for name, (kind, _) in names.DERIVED.items():
        expect("Derived names", name, [kind])
    order = names.STAGE_ORDER
    for name, (kind, producer, _) in names.STAGE_OUTPUTS.items():
        usable = order[order.index(producer) + 1]
        expect("Stage outputs", name, [kind, producer, usable])
    known = {*names.LEAD_FIELDS, *names.DERIVED, *names.STAGE_OUTPUTS, "attributes.<name>"}
    for table, rows in tables.items():
        for name in rows:
            if name not in known:
                problems.append(f"{table} table documents `{name}`, which rules cannot use")
    return problems


# The section → the Struct whose keys its table must list.
_SECTION_KEYS: dict[str, Any] = {
    "scoring": schema.ScoreRule, "qualification": schema.QualRule,
    "territories": schema.MatchRule, "pools": schema.Pool, "assignment": schema.AssignRule,
    "reps": schema.Rep, "sla": schema.SlaRule,
}


def _literals(tp: Any, field: str) -> list[str]:
    found: list[str] = []
    hint = typing.get_type_hints(tp)[field]
    for arg in [hint, *typing.get_args(hint)]:
        if typing.get_origin(arg) is typing.Literal:
            found.extend(typing.get_args(arg))
    return found


def _mentions(body: str, word: str) -> bool:
    return re.search(rf"`{re.escape(word)}[`:]", body) is not None


def _table_keys(body: str) -> set[str]:
    """Keys named in the first column of the tables: `key`, `key: value`, `a` / `b`, `a.b`."""
    keys = set()
    for line in body.splitlines():
        if line.startswith("|"):
            first = line.strip().strip("|").split("|")[0]
            for name in re.findall(r"`([A-Za-z_.]+)", first):
                keys |= set(name.split("."))
    return keys


def section_problems(text: str) -> list[str]:
    """Every section, every key of it, and every enumerated value is documented."""
    part = sections(section(text, 2, "Sections"), 3)
    bodies = {m.group(1): body for title, body in part.items()
              if (m := re.fullmatch(r"`(\w+)`", title))}
    problems = []
    for name in schema.SECTIONS:
        if name not in bodies:
            problems.append(f"section `{name}` is not documented: add a ### `{name}` heading "
                            "under ## Sections in docs/rules.md")
    for name, tp in _SECTION_KEYS.items():
        keys = _table_keys(bodies.get(name, ""))
        for key in tp.__struct_fields__:
            if key not in keys:
                problems.append(f"key `{key}` of `{name}` is not in its section's table")
    values = {
        "pools": _literals(schema.Pool, "strategy"),
        "sla": [*_literals(schema.SlaRule, "clock"), *schema.BREACH_ACTIONS],
        "qualification": list(schema.STATUSES),
    }
    for name, words in values.items():
        for word in words:
            if not _mentions(bodies.get(name, ""), word):
                problems.append(f"value `{word}` is not documented in the `{name}` section")
    tests = _table_keys(section(text, 2, "Rule tests (`rules/tests/*.yaml`)"))
    for tp, what in ((Case, "case"), (CaseState, "state"), (Expect, "expect")):
        for key in tp.__struct_fields__:
            if key not in tests and key not in ("file", "line"):
                problems.append(f"test case {what} key `{key}` is not in the tables")
    return problems


def _shipped() -> Ruleset:
    ruleset: Ruleset = load_directory(ROOT / "rules")
    return ruleset


def _scope(stage: str, ruleset: Ruleset) -> Any:
    return names.scope_for(
        stage, functions=functions.BUILTINS,
        grades=frozenset(g for g, _ in ruleset.grades),
        territories=frozenset(r.id for r in ruleset.territories.rules),
        segments=frozenset(r.id for r in ruleset.segments.rules),
        pools=frozenset(ruleset.pools), reps=frozenset(ruleset.reps),
        hit_ids=frozenset(r.id for r in ruleset.scoring.rules))


def example_problems(text: str, ruleset: Ruleset) -> list[str]:
    """Run every executable example in the docs."""
    problems = []
    for body in yaml_blocks(text):
        tag = _marker(body)
        if tag == "loads":
            try:
                load_texts({"example.yaml": body})
            except RulesetError as exc:
                problems.append(f"a `# example: loads` block does not load:\n{exc.summary()}")
        elif tag == "case":
            try:
                cases = load_case_texts({"example.yaml": body})
            except RulesetError as exc:
                problems.append(f"a `# example: case` block does not parse:\n{exc.summary()}")
                continue
            for r in run_cases(ruleset, cases):
                if not r.ok:
                    problems.append(f"example case {r.case.name!r} fails on rules/: "
                                    f"{'; '.join(r.failures)}")
        elif tag == "refused":
            scope = _scope(_stage_of(body), ruleset)
            for item in _YAML.load(body):
                try:
                    check(item["when"], scope)
                except ExprError as exc:
                    got = f"{exc.message} — {exc.fix}" if exc.fix else exc.message
                    if got != item["error"]:
                        problems.append(f"refused example {item['when']!r}: docs say "
                                        f"{item['error']!r}, the checker says {got!r}")
                else:
                    problems.append(f"refused example {item['when']!r} is accepted")
        elif tag is None:
            scope = _scope(_stage_of(body), ruleset)
            for source in when_snippets(body):
                try:
                    check(source, scope)
                except ExprError as exc:
                    problems.append(f"example `when: {source}` is refused: {exc.message} — "
                                    f"{exc.fix}")
        else:
            problems.append(f"unknown example tag `# example: {tag}`")
    return problems


def link_problems(path: Path) -> list[str]:
    """Relative links in a markdown file point at files that exist."""
    problems = []
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
        if "://" in target:
            continue
        if not (path.parent / target).exists():
            problems.append(f"{path.name} links to {target}, which does not exist")
    return problems


def unlinked_docs(readme: str, docs: Path = ROOT / "docs") -> list[str]:
    """Every file in ``docs/`` is linked from the README's Documentation section, so a reader
    who starts at the README can find all of it."""
    linked = {target for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)",
                                                section(readme, 2, "Documentation"))}
    return [f"docs/{path.relative_to(docs).as_posix()} is not linked from the README's "
            "Documentation section" for path in sorted(docs.rglob("*"))
            if path.is_file() and f"docs/{path.relative_to(docs).as_posix()}" not in linked]


def settings_problems(text: str) -> list[str]:
    """Every setting in the README's configuration table, with its real default."""
    rows = _table_rows(section(text, 2, "Configuration"))
    problems = []
    defaults = Settings()
    for field in Settings.__struct_fields__:
        var = ENV_PREFIX + field.upper()
        if var not in rows:
            problems.append(f"setting {var} is not in the README's configuration table")
            continue
        value = getattr(defaults, field)
        if value is None or value == "":
            shown = "unset" if value is None else "empty"
        else:
            shown = f"`{str(value).lower()}`" if isinstance(value, bool) else f"`{value}`"
        if rows[var][2] != shown:
            problems.append(f"README says {var} defaults to {rows[var][2]}, the code says "
                            f"{shown}")
    for var in rows:
        if var.startswith(ENV_PREFIX) and var[len(ENV_PREFIX):].lower() not in \
                Settings.__struct_fields__:
            problems.append(f"README documents {var}, which is not a setting")
    return problems


def _served_endpoints() -> set[tuple[str, str]]:
    from router.app.application import create_app

    with warnings.catch_warnings():  # litestar's own deprecation notices, not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        app = create_app(Settings(rules_dir=str(ROOT / "rules"), reload_poll_seconds=0))
    out = set()
    for route in app.routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        if path.startswith("/schema/"):
            continue  # the OpenAPI UIs and files under /schema
        for method in getattr(route, "methods", set()) - {"HEAD", "OPTIONS"}:
            out.add((method, path))
    return out


def endpoint_problems(text: str, served: set[tuple[str, str]]) -> list[str]:
    """The README's API table lists exactly the endpoints the service serves."""
    documented = set()
    for methods, path in re.findall(r"`((?:GET|POST|PUT|DELETE|PATCH)(?:/[A-Z]+)*) (/[^`\s]*)`",
                                    section(text, 2, "API")):
        bare = path.partition("?")[0]  # a row may show the query: `GET /v1/leads?status=`
        documented |= {(m, bare) for m in methods.split("/")}
    problems = [f"{m} {p} is served but not in the README's API table"
                for m, p in sorted(served - documented)]
    problems += [f"the README documents {m} {p}, which the service does not serve"
                 for m, p in sorted(documented - served)]
    return problems


# --------------------------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rules_md() -> str:
    return RULES_MD.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def shipped() -> Ruleset:
    return _shipped()


def test_every_function_is_documented(rules_md: str) -> None:
    assert function_problems(rules_md) == []


def test_every_name_is_in_the_names_tables(rules_md: str) -> None:
    assert names_problems(rules_md) == []


def test_every_section_key_and_value_is_documented(rules_md: str) -> None:
    assert section_problems(rules_md) == []


def test_examples_load_pass_and_check(rules_md: str, shipped: Ruleset) -> None:
    assert example_problems(rules_md, shipped) == []
    tags = [_marker(b) for b in yaml_blocks(rules_md)]
    assert tags.count("loads") >= 2 and tags.count("case") >= 1 and tags.count("refused") >= 1


def test_engine_placeholder_section_is_there(rules_md: str) -> None:
    assert "Choosing an engine: compiled or durable-rules" in sections(rules_md, 2)


def test_links_resolve() -> None:
    assert link_problems(RULES_MD) + link_problems(README) + link_problems(RULES_README) == []


def test_rules_readme_examples(shipped: Ruleset) -> None:
    text = RULES_README.read_text(encoding="utf-8")
    assert example_problems(text, shipped) == []
    assert [_marker(b) for b in yaml_blocks(text)] == ["case"]


def test_readme_documents_every_setting(readme: str) -> None:
    assert settings_problems(readme) == []


def test_readme_documents_every_endpoint(readme: str) -> None:
    assert endpoint_problems(readme, _served_endpoints()) == []


def test_readme_quick_start_commands(readme: str) -> None:
    start = section(readme, 2, "Quick start")
    assert "uv run leadrouter serve" in start and "curl" in start
    tests = section(readme, 2, "Tests")
    assert "uv run pytest" in tests
    assert "uv run leadrouter rules check rules && uv run leadrouter rules test rules" in tests


def test_every_doc_is_reachable_from_the_readme(readme: str) -> None:
    assert unlinked_docs(readme) == []


# -- the checkers notice what they are meant to notice -----------------------------------------


def _dummy(name: str = "dummy", params: tuple[str, ...] = (STR,), **kw: Any) -> Function:
    return Function(name=name, impl=lambda x: True, params=params, returns=BOOL,
                    doc="a test function", example=f"{name}(title)", **kw)


def test_checker_reports_a_function_added_without_docs(
        rules_md: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(functions.BUILTINS, "dummy", _dummy())
    problems = function_problems(rules_md)
    assert len(problems) == 1
    assert "dummy() is not documented" in problems[0]


def test_checker_reports_a_wrong_parameter_count(
        rules_md: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(functions.BUILTINS, "lower", _dummy("lower", (STR, STR)))
    monkeypatch.setitem(functions.BUILTINS, "last",
                        _dummy("last", (STR,), keywords={"days": "number"}))
    problems = function_problems(rules_md)
    assert any("lower(): docs show 1 parameter(s), the function takes 2" in p for p in problems)
    assert any("last(): docs show keywords [], the function takes ['days']" in p
               for p in problems)


def test_checker_reports_a_removed_heading_or_example(rules_md: str) -> None:
    without = rules_md.replace("### upper(text)", "### Upper case")
    assert any("upper() is not documented" in p for p in function_problems(without))
    no_example = rules_md.replace("when: 'upper(city) == \"BERLIN\"'", "when: 'city != null'")
    assert any("upper(): no `when:` example" in p for p in function_problems(no_example))


def test_checker_reports_a_stale_function(rules_md: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(functions.BUILTINS, "endswith")
    assert function_problems(rules_md) == ["docs document endswith(), which is not a function"]


def test_checker_reports_missing_names(rules_md: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(names.LEAD_FIELDS, "shoe_size", "number")
    monkeypatch.setitem(names.DERIVED, "lucky", (BOOL, "a test name"))
    monkeypatch.setitem(names.STAGE_OUTPUTS, "employees", ("number", "segments", "changed"))
    problems = names_problems(rules_md)
    assert any("`shoe_size` is missing from the Lead fields table" in p for p in problems)
    assert any("`lucky` is missing from the Derived names table" in p for p in problems)
    assert any("`employees` is missing from the Stage outputs table" in p for p in problems)


def test_checker_reports_a_wrong_kind(rules_md: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(names.LEAD_FIELDS, "employees", "text")
    assert names_problems(rules_md) == [
        "Lead fields `employees`: column 2 says 'number', code says 'text'"]


def test_checker_reports_an_undocumented_section(
        rules_md: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema, "SECTIONS", (*schema.SECTIONS, "forecasts"))
    monkeypatch.setattr(schema, "BREACH_ACTIONS", (*schema.BREACH_ACTIONS, "escalate"))
    problems = section_problems(rules_md)
    assert any("section `forecasts` is not documented" in p for p in problems)
    assert any("value `escalate` is not documented in the `sla` section" in p for p in problems)


def test_checker_reports_an_undocumented_key(rules_md: str) -> None:
    without = rules_md.replace("| `pool_daily_cap` |", "| pool cap |")
    assert section_problems(without) == [
        "key `pool_daily_cap` of `pools` is not in its section's table"]


def test_checker_runs_the_examples(rules_md: str, shipped: Ruleset) -> None:
    broken = rules_md.replace('strategy: weighted_round_robin\n    members: [{rep: alice',
                              'strategy: weighted_robin\n    members: [{rep: alice', 1)
    assert any("does not load" in p and "weighted_robin" in p
               for p in example_problems(broken, shipped))
    wrong = rules_md.replace("error: 'true/false values cannot be ordered — use == or !='",
                             "error: 'booleans cannot be ordered'")
    assert any("consent > false" in p for p in example_problems(wrong, shipped))
    typo = rules_md.replace("when: 'startswith(postal_code, \"94\")'",
                            "when: 'startswith(postcode, \"94\")'")
    assert any("unknown name `postcode`" in p for p in example_problems(typo, shipped))
    case = rules_md.replace("territory: na-central\n      segment: mid-market",
                            "territory: na-west\n      segment: mid-market")
    assert any("territory: expected 'na-west'" in p for p in example_problems(case, shipped))


def test_checker_reports_settings_and_endpoints(
        readme: str, monkeypatch: pytest.MonkeyPatch) -> None:
    changed = readme.replace("| `LEADROUTER_BATCH_LIMIT` | | `100` |",
                             "| `LEADROUTER_BATCH_LIMIT` | | `50` |")
    assert settings_problems(changed) == [
        "README says LEADROUTER_BATCH_LIMIT defaults to `50`, the code says `100`"]
    served = {("GET", "/livez"), ("POST", "/v1/not-documented")}
    problems = endpoint_problems(readme, served)
    assert "POST /v1/not-documented is served but not in the README's API table" in problems
    assert "the README documents POST /v1/leads, which the service does not serve" in problems


def test_checker_reports_an_unlinked_doc(readme: str, tmp_path: Path) -> None:
    (tmp_path / "new.md").write_text("# New\n", encoding="utf-8")
    assert unlinked_docs(readme, tmp_path) == [
        "docs/new.md is not linked from the README's Documentation section"]


def test_helpers_parse_what_the_docs_use() -> None:
    doc = textwrap.dedent('''\
        ## Functions
        ### f(a, b, days=N)
        ```yaml
        # stage: qualification
        when: >-
          a
          and b
        when: 'c'
        ```
        ### Not a function
        ''')
    positional, keywords, body = documented_functions(doc)["f"]
    assert (positional, keywords) == (["a", "b"], ["days"])
    assert when_snippets(yaml_blocks(body)[0]) == ["a and b", "c"]
    assert _stage_of(yaml_blocks(body)[0]) == "qualification"
    assert msgspec.json.encode(sections(doc, 3)).startswith(b'{"f(a, b, days=N)"')
