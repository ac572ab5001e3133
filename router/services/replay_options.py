"""What a replay is asked, the same way from the CLI (``leadrouter rules replay``) and the API
(``POST /v1/rules/replay``): the window (durations such as ``7d``/``12h`` or ISO timestamps),
the filters, and the candidate rules, loaded exactly as ``rules check`` loads them so a broken
directory gives the same file:line errors and nothing is replayed."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from router.engine.cases import load_cases
from router.engine.errors import RuleError, RulesetError
from router.engine.loader import load_directory, load_texts
from router.engine.ruleset import Ruleset
from router.intake.config import compile_intake
from router.services.replay_model import ReplayQuery

__all__ = ["OptionError", "load_rules", "load_rules_texts", "parse_when", "query_of",
           "version_rules"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class OptionError(ValueError):
    """A replay option that cannot be understood; the message says how to write it."""


def parse_when(text: str, now: dt.datetime, *, name: str = "since") -> dt.datetime:
    """``7d``, ``12h``, ``30m``, ``2w`` (that long before ``now``) or an ISO 8601 timestamp
    (UTC when it has no offset)."""
    m = _DURATION.match(text)
    if m:
        return now - dt.timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise OptionError(f"{name}: {text!r} is neither a duration nor a timestamp — write "
                          "e.g. 7d, 12h, 30m, 2w or 2026-11-01T00:00:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def query_of(now: dt.datetime, *, since: str | None = None, until: str | None = None,
             limit: int | None = None, status: str | None = None, pool: str | None = None,
             territory: str | None = None) -> ReplayQuery:
    start = parse_when(since, now, name="since") if since else None
    end = parse_when(until, now, name="until") if until else None
    if start is not None and end is not None and start >= end:
        raise OptionError(f"since ({start.isoformat()}) is not before until "
                          f"({end.isoformat()}) — widen the window")
    if limit is not None and limit < 1:
        raise OptionError(f"limit: {limit} — give a positive number of leads")
    return ReplayQuery(since=start, until=end, limit=limit, status=status, pool=pool,
                       territory=territory)


def load_rules(directory: str | Path, functions: Mapping[str, Any] | None = None) -> Ruleset:
    """``directory`` as ``rules check`` loads it (rule files, intake, test cases): raises
    :class:`RulesetError` with every file:line problem."""
    ruleset: Ruleset = load_directory(directory, functions=functions, intake=compile_intake)
    load_cases(str(directory))
    return ruleset


def load_rules_texts(files: Mapping[str, str],
                     functions: Mapping[str, Any] | None = None) -> Ruleset:
    """Rule files given as ``{name: YAML text}`` (the API's body); names are plain file
    names."""
    bad = [name for name in files if Path(name).name != name or
           not name.endswith((".yaml", ".yml"))]
    if bad:
        raise RulesetError([RuleError(file=name, message="not a rule file name",
                                      fix="give plain file names ending in .yaml, e.g. "
                                      "scoring.yaml") for name in bad])
    ruleset: Ruleset = load_texts(files, source="<request>", functions=functions,
                                  intake=compile_intake)
    return ruleset


def version_rules(pairs: Mapping[str, Ruleset]) -> dict[str, Ruleset]:
    """``{VERSION: ruleset}`` from ``--rules-version VERSION=DIR`` pairs: each VERSION (a
    prefix of at least 7 characters is enough) must be the version DIR's files hash to, so a
    lead is never replayed against other rules than the ones said."""
    out: dict[str, Ruleset] = {}
    for given, ruleset in pairs.items():
        if len(given) < 7 or not ruleset.version.startswith(given):
            raise OptionError(f"rules version {given!r}: that directory's rules are version "
                              f"{ruleset.version[:12]} — give the directory those leads were "
                              "decided with (leadrouter rules check shows a directory's "
                              "version)")
        out[ruleset.version] = ruleset
    return out
