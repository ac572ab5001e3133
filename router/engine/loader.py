"""Load a rules directory into a :class:`Ruleset`, all or nothing, reporting every error.

A directory is read as a whole: every ``*.yaml`` file directly in it (``tests/`` holds cases, not
rules). Each top-level section may come from any file but only from one. Every item is decoded
and checked on its own so that one mistake does not hide the next; if anything is wrong the
caller gets a :class:`RulesetError` listing all of it and keeps serving the ruleset it had.
"""

from __future__ import annotations

import contextvars
import difflib
import hashlib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, available_timezones

import msgspec

import router.engine.schema as s
from router.engine._compile import compile_ruleset
from router.engine._yaml import Document, load_yaml
from router.engine.engagement import compile_engagement, tracked_events
from router.engine.errors import RuleError, RulesetError
from router.engine.functions import BUILTINS, Function
from router.engine.funnel import DEFAULT_FUNNEL, compile_funnel

__all__ = ["Loaded", "Section", "SectionCompiler", "load_directory", "load_texts"]

_GROUPS = ("fit", "bant", "engagement")

# A top-level section as read: the document it is in, its path there and its plain value.
Section = tuple[Document, tuple[str | int, ...], Any]


class SectionCompiler(Protocol):
    """Compiles sections the engine reads but does not interpret (``forms:``/``sources:``).

    Called with every top-level section of the rule files, by name; it appends what is wrong to
    ``errors`` (which rejects the whole load) and returns the compiled value.
    """

    def __call__(self, values: Mapping[str, Section], errors: list[RuleError]) -> Any: ...


class Loaded(msgspec.Struct, kw_only=True):
    """Decoded (not yet compiled) sections, each item with the document it came from."""

    items: dict[str, list[Section]] = {}
    values: dict[str, Section] = {}


def _decode(doc: Document, path: tuple[str | int, ...], item: Any, tp: type[Any],
            errors: list[RuleError], rule: str | None = None) -> Any:
    if rule is None and isinstance(item, dict) and isinstance(item.get("id"), str):
        rule = item["id"]
    reported = len(errors)
    value = doc.decode(path, item, tp, errors, rule=rule)
    if len(errors) > reported and rule is not None:
        # Already reported: references to it must not add "does not exist" errors.
        BROKEN.get().add(rule)
    return value


def _read_sections(docs: list[Document], errors: list[RuleError]) -> Loaded:
    loaded = Loaded()
    owner: dict[str, str] = {}
    for doc in docs:
        if doc.data is None:
            continue
        if not isinstance(doc.data, dict):
            errors.append(doc.error((), "a rule file must be a mapping of sections",
                                    fix=f"start with a section such as {', '.join(s.SECTIONS)}"))
            continue
        for key, value in doc.data.items():
            if key not in s.SECTIONS:
                close = difflib.get_close_matches(str(key), s.SECTIONS, n=1, cutoff=0.6)
                errors.append(doc.error((key,), f"unknown section `{key}`",
                                        fix=f"did you mean `{close[0]}`?" if close else
                                        f"sections are: {', '.join(s.SECTIONS)}"))
                continue
            if key in owner:
                errors.append(doc.error((key,), f"section `{key}` is also defined in "
                                        f"{owner[key]}", fix="keep each section in one file"))
                continue
            owner[key] = doc.file
            loaded.values[key] = (doc, (key,), value)
    return loaded


_ITEM_TYPES: dict[str, type[Any]] = {
    "qualification": s.QualRule, "territories": s.MatchRule, "segments": s.MatchRule,
    "assignment": s.AssignRule, "reps": s.Rep, "sla": s.SlaRule,
}


def _decode_lists(loaded: Loaded, errors: list[RuleError]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {name: [] for name in (*_ITEM_TYPES, "scoring", "pools")}
    for section, tp in _ITEM_TYPES.items():
        if section not in loaded.values:
            continue
        doc, path, value = loaded.values[section]
        if not isinstance(value, list):
            errors.append(doc.error(path, f"`{section}` must be a list of rules",
                                    fix="write each rule on a line starting with `- `"))
            continue
        for i, item in enumerate(value):
            decoded = _decode(doc, (*path, i), item, tp, errors)
            if decoded is not None:
                out[section].append((doc, (*path, i), decoded))
    if "scoring" in loaded.values:
        doc, path, value = loaded.values["scoring"]
        if not isinstance(value, dict):
            errors.append(doc.error(path, "`scoring` must map groups to lists of rules",
                                    fix=f"use the groups {', '.join(_GROUPS)}"))
        else:
            for group, rules in value.items():
                if group not in _GROUPS:
                    close = difflib.get_close_matches(str(group), _GROUPS, n=1, cutoff=0.5)
                    errors.append(doc.error((*path, group), f"unknown scoring group `{group}`",
                                            fix=f"did you mean `{close[0]}`?" if close else
                                            f"groups are: {', '.join(_GROUPS)}"))
                    continue
                if not isinstance(rules, list):
                    errors.append(doc.error((*path, group), f"`{group}` must be a list of rules",
                                            fix="write each rule on a line starting with `- `"))
                    continue
                for i, item in enumerate(rules):
                    decoded = _decode(doc, (*path, group, i), item, s.ScoreRule, errors)
                    if decoded is not None:
                        out["scoring"].append((doc, (*path, group, i), (group, decoded)))
    if "pools" in loaded.values:
        doc, path, value = loaded.values["pools"]
        if not isinstance(value, dict):
            errors.append(doc.error(path, "`pools` must map pool ids to pools",
                                    fix="write `pools:` then `  my-pool: {strategy: ...}`"))
        else:
            for pool_id, item in value.items():
                decoded = _decode(doc, (*path, pool_id), item, s.Pool, errors, str(pool_id))
                if decoded is not None:
                    out["pools"].append((doc, (*path, pool_id), (str(pool_id), decoded)))
    return out


# include_extras keeps the Annotated constraints (e.g. reject reasons are rule-id-like names).
# Ids of items that failed to decode, for the current load (a context variable, so concurrent
# loads in threads or tasks do not share it).
BROKEN: contextvars.ContextVar[set[str]] = contextvars.ContextVar("broken_ids")

_SECTION_TYPES: dict[str, Any] = typing.get_type_hints(s._Sections, include_extras=True)


def _check_reps(items: list[Any], errors: list[RuleError]) -> None:
    zones: set[str] | None = None
    for doc, path, rep in items:
        try:
            ZoneInfo(rep.timezone)
        except Exception:
            zones = zones or available_timezones()
            close = difflib.get_close_matches(rep.timezone, zones, n=1, cutoff=0.6)
            errors.append(doc.error((*path, "timezone"), f"unknown time zone `{rep.timezone}`",
                                    fix=f"did you mean `{close[0]}`?" if close else
                                    "use an IANA name such as Europe/Berlin", rule=rep.id))
        try:
            s.parse_working_hours(rep.working_hours)
        except ValueError as exc:
            errors.append(doc.error((*path, "working_hours"), str(exc), rule=rep.id,
                                    fix='write days and ranges like {mon-fri: "09:00-17:00"}'))


def _read_docs(files: Mapping[str, str], errors: list[RuleError]) -> list[Document]:
    docs = []
    for name, text in sorted(files.items()):
        try:
            docs.append(load_yaml(name, text))
        except RulesetError as exc:
            errors.extend(exc.errors)
    return docs


def version_of(docs: list[Document]) -> str:
    """sha256 of the canonical content: comments, key order and whitespace do not count.

    Files count by name, not by path, so the same rules loaded from another directory (another
    checkout, another replica) have the same version.
    """
    canonical = msgspec.json.encode({Path(d.file).name: d.data for d in docs}, order="sorted")
    return hashlib.sha256(canonical).hexdigest()


def load_texts(files: Mapping[str, str], *, source: str = "<memory>",
               functions: Mapping[str, Function] | None = None,
               intake: SectionCompiler | None = None) -> Any:
    """Load rule files given as ``{file name: YAML text}``; see :func:`load_directory`."""
    errors: list[RuleError] = []
    BROKEN.set(set())
    if not files:
        raise RulesetError([RuleError(file=source, message="no rule files found",
                                      fix="add scoring.yaml, routing.yaml, sla.yaml, reps.yaml")])
    docs = _read_docs(files, errors)
    loaded = _read_sections(docs, errors)
    items = _decode_lists(loaded, errors)
    _check_reps(items["reps"], errors)
    extra: dict[str, Any] = {}
    for key in ("grades", "holidays", "reject_reasons"):
        if key in loaded.values:
            doc, path, value = loaded.values[key]
            extra[key] = _decode(doc, path, value, _SECTION_TYPES[key], errors)
    fns = dict(BUILTINS if functions is None else functions)
    ruleset = compile_ruleset(items, extra, fns, errors, version=version_of(docs),
                              source=source, files=tuple(d.file for d in docs),
                              broken=frozenset(BROKEN.get()))
    compiled_intake = intake(loaded.values, errors) if intake is not None else None
    engagement = None
    if "engagement" in loaded.values:
        engagement = compile_engagement(*loaded.values["engagement"], errors, _decode)
    funnel = DEFAULT_FUNNEL
    if "funnel" in loaded.values:
        funnel = compile_funnel(*loaded.values["funnel"], errors, _decode) or DEFAULT_FUNNEL
    if errors or ruleset is None:
        raise RulesetError(errors)
    return msgspec.structs.replace(
        ruleset, intake=compiled_intake, engagement=engagement, funnel=funnel,
        engagement_events=tracked_events(ruleset.windows, ruleset.last_events, engagement))


def load_directory(directory: str | Path, *,
                   functions: Mapping[str, Function] | None = None,
                   intake: SectionCompiler | None = None) -> Any:
    """Load and compile every rule file in ``directory``; raises :class:`RulesetError`.

    ``functions`` are the expression functions rules may call (the built-ins unless given).
    ``intake`` compiles the ``forms:``/``sources:`` sections into ``Ruleset.intake``: the
    engine is the lowest layer and does not know what they mean, so the caller that serves them
    passes :func:`router.intake.config.compile_intake` (the rules service and the ``rules``
    commands do). Without it those sections are accepted but not checked.
    """
    root = Path(directory)
    if not root.is_dir():
        raise RulesetError([RuleError(file=str(root), message="rules directory not found",
                                      fix="pass the directory holding scoring.yaml etc.")])
    files: dict[str, str] = {}
    errors: list[RuleError] = []
    for path in sorted([*root.glob("*.yaml"), *root.glob("*.yml")]):
        try:
            files[str(path)] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(RuleError(file=str(path), message=f"cannot read file: {exc}",
                                    fix="check permissions and that the file is UTF-8"))
    if errors:
        raise RulesetError(errors)
    return load_texts(files, source=str(root), functions=functions, intake=intake)
