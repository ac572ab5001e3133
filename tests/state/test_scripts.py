"""router/state/scripts.py: every script is ``_lib.lua`` plus its own file, and a
``--!include`` library (the pool pick, ``lua/_pick.lua``) is pulled in exactly once."""

from __future__ import annotations

import re
from importlib import resources

from router.state._engagement_scripts import _script as _engagement_script
from router.state.ratelimit import _script as _ratelimit_script
from router.state.scripts import SCRIPT_NAMES, load_scripts
from router.state.sla_warn import warn_script


def test_pick_library_is_included_once_where_asked() -> None:
    scripts = load_scripts()
    commit = scripts["commit"].source
    assert commit.count("local function pick_chain(") == 1
    assert not any(line.startswith("--!include") for line in commit.splitlines())
    for name in SCRIPT_NAMES:
        # every script still starts with the shared helpers
        assert "local function member_facts(" in scripts[name].source


# --- every key a script touches is declared in KEYS (managed services refuse the others) ---

_CALL = re.compile(r"redis\.p?call\(")
_NO_KEY = {"TIME"}
_ALL_KEYS = {"DEL", "EXISTS", "UNLINK", "MGET", "TOUCH"}


def _args(src: str, start: int) -> list[str]:
    """The top-level arguments of the call whose ``(`` is just before ``start``."""
    out, depth, cur, i, quote = [], 0, [], start, ""
    while i < len(src):
        ch = src[i]
        if quote:
            cur.append(ch)
            if ch == "\\":
                cur.append(src[i + 1])
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            cur.append(ch)
        elif ch in "([{":
            depth += 1
            cur.append(ch)
        elif ch in ")]}" and depth:
            depth -= 1
            cur.append(ch)
        elif ch == ")" or (ch == "," and not depth):
            out.append("".join(cur).strip())
            cur = []
            if ch == ")":
                return out
        else:
            cur.append(ch)
        i += 1
    raise AssertionError(f"unbalanced call at {start}")


def _from_keys(src: str, expr: str, seen: frozenset[str] = frozenset()) -> bool:
    """Whether ``expr`` is ``KEYS[...]``, or a name every binding of which is (a ``local``
    assignment, or a function parameter at every call site of that function)."""
    if re.fullmatch(r"KEYS\[[^\]]+(\[[^\]]*\][^\]]*)?\]", expr):
        return True
    if not re.fullmatch(r"[A-Za-z_]\w*", expr):
        return False
    if expr in seen:  # resolving it already: a name passed on under the same name
        return True
    seen |= {expr}
    bound = []
    for m in re.finditer(r"local\s+([\w\s,]+?)\s*=\s*([^\n]+)", src):
        names = [n.strip() for n in m.group(1).split(",")]
        if expr in names:
            values = _args(m.group(2) + ")", 0)
            index = names.index(expr)
            bound.append(index < len(values) and _from_keys(src, values[index], seen))
    for m in re.finditer(r"function\s+([\w.]+)\s*\(([^)]*)\)", src):
        params = [p.strip() for p in m.group(2).split(",")]
        if expr not in params:
            continue
        index = params.index(expr)
        calls = [c for c in re.finditer(rf"(?<![\w.]){re.escape(m.group(1))}\(", src)
                 if not src[:c.start()].rstrip().endswith("function")]
        bound.append(True)  # never called in this script: touches nothing
        for c in calls:
            values = _args(src, c.end())
            bound.append(index < len(values) and _from_keys(src, values[index], seen))
    return bool(bound) and all(bound)


def undeclared_keys(source: str) -> list[str]:
    """Every ``redis.call``/``pcall`` whose key argument does not come from KEYS."""
    bad = []
    for m in _CALL.finditer(source):
        args = _args(source, m.end())
        command = args[0].strip("'\"").upper()
        keys = [] if command in _NO_KEY else args[1:] if command in _ALL_KEYS else args[1:2]
        if not re.fullmatch(r"'[A-Za-z]+'", args[0]):
            keys = ["(command not a literal)"]
        line = source.count("\n", 0, m.start()) + 1
        bad += [f"line {line}: {command} {k}" for k in keys if not _from_keys(source, k)]
    return bad


def _all_scripts() -> dict[str, str]:
    scripts = {name: s.source for name, s in load_scripts().items()}
    scripts |= {name: _engagement_script(name).source
                for name in ("event", "identify", "requalify")}
    scripts["ratelimit"] = _ratelimit_script().source
    scripts["sla_warn"] = warn_script().source
    return scripts


def test_every_script_declares_every_key_it_touches_in_KEYS() -> None:
    scripts = _all_scripts()
    lua = {p.stem for p in resources.files("router.state").joinpath("lua").iterdir()
           if p.name.endswith(".lua") and not p.name.startswith("_")}
    assert set(scripts) == lua  # every script file is checked
    calls = 0
    for name, source in scripts.items():
        assert undeclared_keys(source) == [], name
        calls += len(_CALL.findall(source))
    assert calls > 100


def test_the_key_check_catches_keys_built_inside_a_script() -> None:
    lib = load_scripts()["commit"].source
    for snippet in ("redis.call('GET', 'lr:{lr}:x')", "redis.call('GET', ARGV[1])",
                    "local k = ARGV[2] .. ':open'\nredis.call('ZADD', k, 1, 'a')",
                    "local function f(key) return redis.call('GET', key) end\nf(KEYS[1])\n"
                    "f('lr:{lr}:rep:' .. ARGV[1])",
                    "redis.call('DEL', KEYS[1], ARGV[1])",
                    "local c = 'GET'\nredis.call(c, KEYS[1])"):
        assert undeclared_keys(f"{lib}\n{snippet}") != [], snippet
    assert undeclared_keys("local a, b = KEYS[1], KEYS[2]\nredis.call('DEL', a, b)") == []
