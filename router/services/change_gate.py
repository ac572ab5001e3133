"""The reload gate: refuse a rules change that moves more than a given share of last week's
leads (``--max-change status:5%``, ``POST /v1/admin/rules/reload?max_change=...``,
``LEADROUTER_RELOAD_MAX_CHANGE``). Off unless asked.

The candidate is replayed (router/services/replay.py) over the leads of the window (default
the last 7 days) and each limit compares the share of replayed leads whose ``field`` changed
(the report's ``changed_by_field``) with its maximum. Pure but for the replay's reads; nothing
is written.
"""

from __future__ import annotations

import datetime as dt
import re

import msgspec

from router.engine.ruleset import Ruleset
from router.services.replay import ReplayService
from router.services.replay_options import query_of
from router.services.replay_report import FIELDS, collect
from router.services.rules import ReloadResult, RulesManager

__all__ = ["GATE_WINDOW", "ChangeLimit", "GateResult", "Refusal", "check_change", "gated_reload",
           "parse_max_change"]

GATE_WINDOW = "7d"
_FIELDS = ("score", *FIELDS)
_LIMIT = re.compile(r"^\s*([a-z_]+)\s*:\s*(\d+(?:\.\d+)?)\s*%\s*$")


class ChangeLimit(msgspec.Struct, frozen=True):
    field: str
    percent: float


class Refusal(msgspec.Struct, frozen=True, kw_only=True):
    field: str
    changed: int
    replayed: int
    percent: float  # the share that changed
    limit: float


class GateResult(msgspec.Struct, frozen=True, kw_only=True):
    replayed: int
    refusals: list[Refusal]
    since: str

    @property
    def ok(self) -> bool:
        return not self.refusals

    def message(self, directory: str) -> str:
        """Why the change was refused, and how to see the whole report."""
        parts = [f"{r.field} changes on {r.percent:.1f}% of the {r.replayed} leads of the last "
                 f"{self.since} ({r.changed} leads), more than the {r.limit:g}% allowed"
                 for r in self.refusals]
        return ("; ".join(parts) + f" — see what changes with `leadrouter rules replay "
                f"{directory} --since {self.since}`, then publish a smaller change or raise "
                "--max-change")


def parse_max_change(text: str) -> list[ChangeLimit]:
    """``status:5%``, several comma-separated (``status:5%,owner:10%``); raises ValueError
    saying how to write it."""
    limits = []
    for part in text.split(","):
        m = _LIMIT.match(part)
        if m is None or m.group(1) not in _FIELDS:
            raise ValueError(f"max-change {part.strip()!r}: write FIELD:PERCENT%, e.g. "
                             f"status:5% or owner:10% (fields: {', '.join(_FIELDS)}), "
                             "several separated by commas")
        percent = float(m.group(2))
        if percent > 100:
            raise ValueError(f"max-change {part.strip()!r}: a share is at most 100%")
        limits.append(ChangeLimit(m.group(1), percent))
    return limits


async def check_change(replay: ReplayService, candidate: Ruleset, limits: list[ChangeLimit],
                       *, now: dt.datetime, base: Ruleset | None = None,
                       since: str = GATE_WINDOW) -> GateResult:
    """Replay the window's leads against ``candidate`` and compare each limit."""
    query = query_of(now if now.tzinfo else now.replace(tzinfo=dt.UTC), since=since)
    report = await collect(replay.run(candidate, query), candidate=candidate, base=base,
                           query=query)
    refusals = []
    for limit in limits:
        changed = report.changed_by_field.get(limit.field, 0)
        share = 100.0 * changed / report.replayed if report.replayed else 0.0
        if share > limit.percent:
            refusals.append(Refusal(field=limit.field, changed=changed,
                                    replayed=report.replayed, percent=share,
                                    limit=limit.percent))
    return GateResult(replayed=report.replayed, refusals=refusals, since=since)


async def gated_reload(rules: RulesManager, replay: ReplayService, limits: list[ChangeLimit], *,
                       now: dt.datetime, reason: str, since: str = GATE_WINDOW
                       ) -> tuple[ReloadResult, GateResult | None]:
    """A reload that first replays the window against the candidate and refuses it (the live
    ruleset untouched, ``last_rejected`` saying why) when it changes more than ``limits``
    allow. Rules that do not load are rejected as by any reload. Raises StateError when the
    replay cannot read Redis (nothing changed: try again)."""
    candidate, _ = rules.load_candidate()
    if candidate is None or not rules.loaded or candidate.version == rules.current.version:
        return rules.reload(reason=reason, candidate=candidate), None
    gate = await check_change(replay, candidate, limits, now=now, base=rules.current,
                              since=since)
    if not gate.ok:
        return rules.refuse(candidate, [gate.message(str(rules.directory))],
                            reason=reason), gate
    return rules.reload(reason=reason, candidate=candidate), gate
