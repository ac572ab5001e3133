"""A window's decided leads with their outcomes, page by page, for score calibration
(router/services/calibration.py) and tuning (router/services/tune.py). Nothing is written.

:class:`OutcomeReader` walks the arrival index (``leads:arrivals``, router/state/inputs.py) in
arrival order, ``batch`` leads a page; per page one pipelined round trip reads each lead's
stored decision and pool (router/state/scored.py) and the outcome reader's stages
(router/state/outcomes.py) — both sent in the same event-loop turn, so one write — then yields
to the event loop, so live routing never waits behind a calibration.

A lead converted for ``target`` when it reached ``target`` or any later stage of the funnel's
chain (``won`` implies ``opportunity``; exits such as ``lost`` imply nothing: see
router/engine/funnel.py). The score, grade and scoring rules are the lead's latest decision
(re-scoring by engagement included); speed to lead is arrival → first ``accepted`` /
``contacted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable, Mapping

import msgspec
from leadrouter_sdk import Score

from router.engine.funnel import DEFAULT_FUNNEL, FunnelSpec
from router.engine.ruleset import Ruleset
from router.services.calibration import CalibrationReport, LeadFacts, Tally
from router.state.inputs import arrival_pages
from router.state.models import to_ms
from router.state.outcomes import read_outcomes
from router.state.scored import read_scored
from router.state.store import Store

__all__ = ["CalibrationService", "OutcomeReader", "TargetError", "funnel_of",
           "scoring_rules"]


class TargetError(ValueError):
    """A target that is not a stage of the funnel's chain; the message lists the allowed."""


class _Scored(msgspec.Struct):
    """The part of a stored decision (router/services/records.py ``Record``) read here."""

    score: Score


_decode = msgspec.json.Decoder(_Scored).decode


def funnel_of(ruleset: Ruleset | None) -> FunnelSpec:
    """The ruleset's funnel (rules/funnel.yaml), else the default one."""
    return ruleset.funnel if ruleset is not None else DEFAULT_FUNNEL


def scoring_rules(ruleset: Ruleset) -> dict[str, tuple[str | None, float | None]]:
    """Every scoring rule id → (group, points), in the ruleset's order."""
    return {r.id: (r.group, r.points) for r in ruleset.scoring.rules}


def _later(funnel: FunnelSpec, target: str | None) -> tuple[str, tuple[str, ...]]:
    target = target or funnel.converted
    if target not in funnel.chain:
        raise TargetError(f"target {target!r} is not a stage of the funnel's chain — use one "
                          f"of: {', '.join(funnel.chain)} (rules/funnel.yaml)")
    return target, funnel.chain[funnel.chain.index(target):]


class OutcomeReader:
    """One walk over a window (``since``/``until`` None: from the oldest lead kept / to now).
    ``skipped``: leads of the window without a readable decision (expired, erased)."""

    def __init__(self, store: Store, *, funnel: FunnelSpec, target: str | None = None,
                 since: dt.datetime | None = None, until: dt.datetime | None = None,
                 batch: int = 500) -> None:
        self.store = store
        self.funnel = funnel
        self.target, self._later = _later(funnel, target)
        self.since, self.until = since, until
        self.batch = batch
        self.skipped = 0
        self.read = 0

    async def pages(self, progress: Callable[[int], None] | None = None
                    ) -> AsyncIterator[list[LeadFacts]]:
        since = None if self.since is None else to_ms(self.since)
        until = None if self.until is None else to_ms(self.until)
        async with contextlib.aclosing(arrival_pages(
                self.store, since_ms=since, until_ms=until, count=self.batch)) as pages:
            async for page in pages:
                yield await self._page(page)
                self.read += len(page)
                if progress is not None:
                    progress(self.read)

    async def _page(self, page: list[tuple[str, int]]) -> list[LeadFacts]:
        ids = [lead_id for lead_id, _ in page]
        scored, outcomes = await asyncio.gather(
            read_scored(self.store, ids),
            read_outcomes(self.store, ids, stages=self.funnel.stages))
        out = []
        for (lead_id, created), (raw, pool) in zip(page, scored, strict=True):
            outcome = outcomes.get(lead_id)
            if raw is None or outcome is None:
                self.skipped += 1
                continue
            try:
                score = _decode(raw).score
            except msgspec.DecodeError:
                self.skipped += 1
                continue
            out.append(_facts(lead_id, created, score, pool, outcome.stages, self._later))
        return out


def _facts(lead_id: str, created: int, score: Score, pool: bytes | None,
           stages: Mapping[str, int], later: tuple[str, ...]) -> LeadFacts:
    touched = [stages[s] for s in ("accepted", "contacted") if s in stages]
    return LeadFacts(
        lead_id=lead_id, score=score.total, grade=score.grade,
        rules=frozenset(c.rule for c in score.contributions),
        pool=pool.decode() if pool else None,
        speed_ms=max(0, min(touched) - created) if touched else None,
        converted=any(s in stages for s in later))


class CalibrationService:
    """``GET /v1/scoring/calibration`` and ``leadrouter rules calibrate``: the report of a
    window against the given (live) ruleset's grades and scoring rules."""

    def __init__(self, store: Store, *, batch: int = 500) -> None:
        self.store = store
        self.batch = batch

    async def report(self, ruleset: Ruleset, *, since: dt.datetime | None = None,
                     until: dt.datetime | None = None, target: str | None = None,
                     band_width: float = 20.0,
                     progress: Callable[[int], None] | None = None) -> CalibrationReport:
        reader = OutcomeReader(self.store, funnel=funnel_of(ruleset), target=target,
                               since=since, until=until, batch=self.batch)
        tally = Tally(band_width=band_width)
        async for page in reader.pages(progress):
            tally.extend(page)
        return tally.report(target=reader.target, grades=ruleset.grades,
                            rules=scoring_rules(ruleset), since=since, until=until,
                            skipped=reader.skipped)
