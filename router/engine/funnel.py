"""The funnel after routing (``funnel:`` in rules/funnel.yaml): ordered stages, the terminal
ones, the exits, which stage counts as converted and which one is the won deal.

The stages are a chain (``accepted`` → ``contacted`` → ``meeting`` → ``opportunity`` → ``won``)
plus exits (``lost``): reaching a chain stage implies every chain stage before it (a lead
reported ``won`` counts as having reached ``opportunity`` even if that report never came); an
exit can be reached from anywhere and implies nothing. ``accepted`` and ``contacted`` are the
SLA's owner actions (docs/sla.md) and must be the first two stages, in that order.

Without a ``funnel:`` section the :data:`DEFAULT_FUNNEL` applies (docs/rules.md).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Annotated, Any

import msgspec

from router.engine._yaml import Document
from router.engine.errors import RuleError

__all__ = ["DEFAULT_FUNNEL", "FunnelSection", "FunnelSpec", "compile_funnel"]

StageName = Annotated[str, msgspec.Meta(min_length=1, max_length=40,
                                         pattern=r"^[a-z][a-z0-9_]*$")]
FIRST = ("accepted", "contacted")
MAX_STAGES = 16


class FunnelSection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``funnel:`` section as written."""

    stages: list[StageName]
    terminal: list[StageName] | None = None  # default: won and lost, when they are stages
    exits: list[StageName] | None = None  # default: lost, when it is a stage
    converted: StageName = "opportunity"
    won: StageName | None = None
    description: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class FunnelSpec(msgspec.Struct, frozen=True, kw_only=True):
    """The compiled funnel: ``stages`` in order, ``chain`` the stages that imply their
    predecessors (every stage but the exits), ``terminal``/``exits`` sets, ``converted`` the
    stage calibration counts as a conversion, ``won`` the stage whose amount is revenue."""

    stages: tuple[str, ...]
    chain: tuple[str, ...]
    terminal: frozenset[str]
    exits: frozenset[str]
    converted: str
    won: str | None

    def index(self, stage: str) -> int:
        return self.stages.index(stage)

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """The velocity pairs: each chain stage from the one before it (``routed`` before the
        first), each exit from ``routed``, and the ``won`` stage's cycle from ``routed``."""
        out = [(a, b) for a, b in zip(("routed", *self.chain), self.chain, strict=False)]
        out += [("routed", e) for e in self.stages if e in self.exits]
        if self.won is not None and ("routed", self.won) not in out:
            out.append(("routed", self.won))
        return tuple(out)


DEFAULT_FUNNEL = FunnelSpec(
    stages=("accepted", "contacted", "meeting", "opportunity", "won", "lost"),
    chain=("accepted", "contacted", "meeting", "opportunity", "won"),
    terminal=frozenset({"won", "lost"}), exits=frozenset({"lost"}), converted="opportunity",
    won="won")

Decode = Callable[..., Any]


def _not_stage(doc: Document, path: tuple[str | int, ...], name: str, stages: list[str],
               what: str) -> RuleError:
    close = difflib.get_close_matches(name, stages, n=1, cutoff=0.6)
    return doc.error(path, f"{what} `{name}` is not a stage",
                     fix=f"did you mean `{close[0]}`?" if close else
                     f"use one of the stages: {', '.join(dict.fromkeys(stages))}")


def _check(doc: Document, path: tuple[str | int, ...], sec: FunnelSection,
           errors: list[RuleError]) -> bool:
    before = len(errors)
    terminal, exits = sec.terminal or [], sec.exits or []
    seen: set[str] = set()
    for i, name in enumerate(sec.stages):
        if name in seen:
            errors.append(doc.error((*path, "stages", i), f"stage `{name}` is listed twice",
                                    fix="list each stage once"))
        seen.add(name)
    if len(sec.stages) > MAX_STAGES:
        errors.append(doc.error((*path, "stages"), f"{len(sec.stages)} stages",
                                fix=f"keep at most {MAX_STAGES} stages"))
    for i, need in enumerate(FIRST):
        if need not in seen:
            errors.append(doc.error((*path, "stages"), f"stage `{need}` is missing",
                                    fix="the first two stages are the SLA's owner actions: "
                                    "start the list with `accepted`, `contacted`"))
        elif sec.stages.index(need) != i:
            errors.append(doc.error((*path, "stages", sec.stages.index(need)),
                                    f"stage `{need}` is out of order",
                                    fix="the list must start with `accepted`, `contacted` "
                                    "(the SLA's owner actions, in that order)"))
    for key, names in (("terminal", terminal), ("exits", exits)):
        for i, name in enumerate(names):
            if name not in seen:
                errors.append(_not_stage(doc, (*path, key, i), name, sec.stages, key[:-1]
                                         if key == "exits" else "terminal stage"))
            elif name in FIRST:
                errors.append(doc.error((*path, key, i), f"`{name}` cannot be {key[:-1]}",
                                        fix="accepted and contacted always lead on"))
    for i, name in enumerate(exits):
        if name in seen and name not in terminal:
            errors.append(doc.error((*path, "exits", i), f"exit `{name}` is not terminal",
                                    fix=f"add `{name}` to `terminal:`"))
    if sec.converted not in seen:
        errors.append(_not_stage(doc, (*path, "converted"), sec.converted, sec.stages,
                                 "converted"))
    elif sec.converted in exits:
        errors.append(doc.error((*path, "converted"), f"converted `{sec.converted}` is an exit",
                                fix="converted must be a stage of the chain (not lost)"))
    if sec.won is not None:
        if sec.won not in seen:
            errors.append(_not_stage(doc, (*path, "won"), sec.won, sec.stages, "won"))
        elif sec.won in exits or sec.won not in terminal:
            errors.append(doc.error((*path, "won"), f"won `{sec.won}` must be terminal and "
                                    "not an exit", fix=f"add `{sec.won}` to `terminal:` only"))
    chain = [s for s in sec.stages if s not in exits]
    for i, name in enumerate(chain[:-1]):
        if name in terminal:
            errors.append(doc.error((*path, "terminal", terminal.index(name)),
                                    f"terminal stage `{name}` is followed by `{chain[i + 1]}`",
                                    fix="put terminal stages (other than exits) last"))
    return len(errors) == before


def compile_funnel(doc: Document, path: tuple[str | int, ...], value: Any,
                   errors: list[RuleError], decode: Decode) -> FunnelSpec | None:
    """The ``funnel:`` section compiled, or None with what is wrong appended to ``errors``
    (each with its file:line)."""
    if isinstance(value, dict):
        known = FunnelSection.__struct_fields__
        for key in [k for k in value if k not in known]:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            errors.append(doc.error((*path, key), f"unknown key `{key}`", rule="funnel",
                                    fix=f"did you mean `{close[0]}`?" if close else
                                    f"allowed keys: {', '.join(known)}"))
        value = {k: v for k, v in value.items() if k in known}
    sec = decode(doc, path, value, FunnelSection, errors, "funnel")
    if sec is None:
        return None
    sec = msgspec.structs.replace(
        sec, terminal=sec.terminal if sec.terminal is not None else [
            s for s in sec.stages if s in DEFAULT_FUNNEL.terminal],
        exits=sec.exits if sec.exits is not None else [
            s for s in sec.stages if s in DEFAULT_FUNNEL.exits])
    if not _check(doc, path, sec, errors):
        return None
    terminal, exits = sec.terminal or [], sec.exits or []
    won = sec.won
    if won is None and "won" in sec.stages and "won" in terminal and "won" not in exits:
        won = "won"
    return FunnelSpec(stages=tuple(sec.stages),
                      chain=tuple(s for s in sec.stages if s not in exits),
                      terminal=frozenset(terminal), exits=frozenset(exits),
                      converted=sec.converted, won=won)
