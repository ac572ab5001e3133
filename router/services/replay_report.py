"""The report of a replay: what the candidate rules would have changed, counted as the
replayed leads stream by.

:class:`ReportBuilder` takes :class:`~router.services.replay_model.ReplayedLead` items
(``add``) and :class:`~router.services.replay_model.Skip` items (``skip``) one at a time and
keeps only counters (bounded by the number of distinct statuses, pools, reps, rules ...) and a
bounded sample of changed leads, so a million leads aggregate in constant memory.
:meth:`ReportBuilder.finish` gives the :class:`Report`, a msgspec struct whose JSON shape is
documented in docs/rules.md ("The replay report") and kept stable: fields are added, never
renamed. Pure: no I/O, no clock.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

import msgspec

from router.engine.ruleset import Ruleset
from router.services.replay_model import Outcome, PoolFacts, ReplayedLead, ReplayQuery, Skip

__all__ = ["FIELDS", "SCORE_BINS", "FairnessRow", "OwnerRow", "Report", "ReportBuilder",
           "RuleHits", "Sample", "ScoreBin", "Skipped", "Transition", "Volume", "collect",
           "pool_facts"]

# The fields whose changes a report counts, in the order it lists them.
FIELDS = ("status", "grade", "territory", "segment", "pool", "queue", "owner", "sla_policy")
# Score histogram edges: bins "<0", "0-10", ..., "90-100", ">=100".
SCORE_BINS = tuple(range(0, 101, 10))
_NAMES = {"segment": "by_segment", "grade": "by_grade", "territory": "by_territory",
          "queue": "by_queue", "status": "by_status", "sla_policy": "by_sla_policy"}


class Transition(msgspec.Struct, frozen=True, kw_only=True):
    """``count`` leads whose ``field`` went from ``from`` to ``to`` (null: none)."""

    field: str
    from_: str | None = msgspec.field(name="from")
    to: str | None
    count: int


class Volume(msgspec.Struct, frozen=True, kw_only=True):
    """Leads with this value (``key``; null: none) before and after."""

    key: str | None
    before: int
    after: int
    delta: int


class FairnessRow(msgspec.Struct, frozen=True, kw_only=True):
    """One rep in one pool: its share of the pool's leads against its share of the pool's
    weight (``fairness`` 1.0 = exactly its weight; null where it is not a member)."""

    pool: str
    leads_before: int
    leads_after: int
    weight_before: float | None
    weight_after: float | None
    share_before: float | None
    share_after: float | None
    fairness_before: float | None
    fairness_after: float | None


class OwnerRow(msgspec.Struct, frozen=True, kw_only=True):
    owner: str | None
    before: int
    after: int
    delta: int
    fairness: list[FairnessRow] = []


class RuleHits(msgspec.Struct, frozen=True, kw_only=True):
    rule: str
    before: int
    after: int
    delta: int


class ScoreBin(msgspec.Struct, frozen=True, kw_only=True):
    bin: str
    low: float | None
    high: float | None
    before: int
    after: int


class Skipped(msgspec.Struct, frozen=True, kw_only=True):
    count: int
    by_reason: dict[str, int]


class Sample(msgspec.Struct, frozen=True, kw_only=True):
    """A changed lead, both decisions side by side; ``difference``: the rule that made it."""

    lead_id: str
    field: str
    from_: str | None = msgspec.field(name="from")
    to: str | None
    difference: str | None
    rules_gained: list[str]
    rules_lost: list[str]
    before: Outcome
    after: Outcome


class Report(msgspec.Struct, frozen=True, kw_only=True):
    replayed: int
    skipped: Skipped
    changed: int
    changed_by_field: dict[str, int]
    transitions: list[Transition]
    status_matrix: list[Transition]
    by_status: list[Volume]
    by_pool: list[Volume]
    by_owner: list[OwnerRow]
    by_grade: list[Volume]
    by_territory: list[Volume]
    by_segment: list[Volume]
    by_queue: list[Volume]
    by_sla_policy: list[Volume]
    sla_load: list[Volume]
    rules: list[RuleHits]
    dead_rules: list[str]
    score_histogram: list[ScoreBin]
    score_mean_before: float | None
    score_mean_after: float | None
    samples: list[Sample]
    rules_versions: dict[str, int] = {}
    candidate_version: str = ""
    query: ReplayQuery | None = None


def _bin_rows(before: Counter[int], after: Counter[int]) -> list[ScoreBin]:
    rows = [ScoreBin(bin=f"<{SCORE_BINS[0]}", low=None, high=SCORE_BINS[0],
                     before=before[0], after=after[0])]
    for i in range(1, len(SCORE_BINS)):
        low, high = SCORE_BINS[i - 1], SCORE_BINS[i]
        rows.append(ScoreBin(bin=f"{low}-{high}", low=low, high=high, before=before[i],
                             after=after[i]))
    last = len(SCORE_BINS)
    rows.append(ScoreBin(bin=f">={SCORE_BINS[-1]}", low=SCORE_BINS[-1], high=None,
                         before=before[last], after=after[last]))
    return rows


def _volumes(before: Counter[Any], after: Counter[Any]) -> list[Volume]:
    keys = set(before) | set(after)
    rows = [Volume(key=k, before=before[k], after=after[k], delta=after[k] - before[k])
            for k in keys]
    rows.sort(key=lambda v: (-abs(v.delta), -v.after, v.key or ""))
    return rows


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


# The explanation stage that decides each field (grade follows the score: no rule of its own).
_STAGES = {"status": "qualification", "territory": "territories", "segment": "segments",
           "pool": "assignment", "queue": "assignment", "owner": "assignment",
           "sla_policy": "sla"}


def _deciding_rule(outcome: Outcome, stage: str | None) -> str | None:
    if stage == "assignment" and outcome.route_rule:
        return outcome.route_rule
    return next((st.rule for st in outcome.explanation if st.stage == stage and st.rule), None)


def _difference(field: str, before: Outcome, after: Outcome) -> str | None:
    """The rule that made the difference: the rule that decided ``field`` before and the one
    that decides it now (``q.mql.score -> q.default``) when the explanations name them;
    otherwise the first rule that matched on one side only (the new side first)."""
    stage = _STAGES.get(field)
    old, new = _deciding_rule(before, stage), _deciding_rule(after, stage)
    if old != new and (old or new):
        return f"{old} -> {new}" if old and new else old or new
    gained = [r for r in after.matched if r not in before.matched]
    lost = [r for r in before.matched if r not in after.matched]
    if gained or lost:
        return (gained or lost)[0]
    return new


class ReportBuilder:
    """Counts replayed leads as they come; see the module docstring."""

    def __init__(self, *, samples_per_transition: int = 3, max_samples: int = 200) -> None:
        self.samples_per_transition = samples_per_transition
        self.max_samples = max_samples
        self.replayed = 0
        self.changed = 0
        self.changed_by_field: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.transitions: Counter[tuple[str, str | None, str | None]] = Counter()
        self.status_matrix: Counter[tuple[str, str]] = Counter()
        self.before: dict[str, Counter[str | None]] = {f: Counter() for f in FIELDS}
        self.after: dict[str, Counter[str | None]] = {f: Counter() for f in FIELDS}
        self.pool_owner: tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]] = (
            Counter(), Counter())
        self.sla_load: tuple[Counter[str | None], Counter[str | None]] = (Counter(), Counter())
        self.hits: tuple[Counter[str], Counter[str]] = (Counter(), Counter())
        self.scores: tuple[Counter[int], Counter[int]] = (Counter(), Counter())
        self.score_sum = [0.0, 0.0]
        self.versions: Counter[str] = Counter()
        self.samples: dict[tuple[str, str | None, str | None], list[Sample]] = defaultdict(list)
        self._sampled = 0
        self._same: Counter[tuple[Any, ...]] = Counter()
        self._same_hits: Counter[str] = Counter()

    def add(self, item: ReplayedLead) -> None:
        self.replayed += 1
        self.versions[item.rules_version] += 1
        b, a = item.before, item.after
        if b is a or b == a:  # most leads: one counter here, spread over the others in finish()
            # The fields only (a few thousand combinations at most); the rules matched go
            # straight into one counter: with them in the key nearly every lead was a key of
            # its own, and finish() spent ~10 µs a lead spreading them (a 300 ms stall of the
            # serving worker per 30,000 leads: loadtests/replay_live.py).
            self._same[(b.status, b.grade, b.territory, b.segment, b.pool, b.queue, b.owner,
                        b.sla_policy, bisect_right(SCORE_BINS, b.score))] += 1
            self._same_hits.update(b.matched)
            self.score_sum[0] += b.score
            self.score_sum[1] += b.score
            return
        any_change = b.score != a.score
        if any_change:
            self.changed_by_field["score"] += 1
        for side, outcome in enumerate((b, a)):
            self._count_side(side, outcome, 1)
            self.score_sum[side] += outcome.score
            self.scores[side][bisect_right(SCORE_BINS, outcome.score)] += 1
        self.status_matrix[(b.status, a.status)] += 1
        for field in FIELDS:
            old, new = getattr(b, field), getattr(a, field)
            self.before[field][old] += 1
            self.after[field][new] += 1
            if old != new:
                any_change = True
                self.changed_by_field[field] += 1
                key = (field, old, new)
                self.transitions[key] += 1
                self._sample(key, item)
        if any_change:
            self.changed += 1

    def _count_side(self, side: int, outcome: Outcome | tuple[Any, ...], n: int) -> None:
        """Pool/owner and SLA load of one side (an Outcome, or the fields of :data:`FIELDS`),
        and an Outcome's rule hits."""
        if isinstance(outcome, Outcome):
            pool, owner, sla = outcome.pool, outcome.owner, outcome.sla_policy
            for rule in outcome.matched:
                self.hits[side][rule] += n
        else:
            pool, owner, sla = outcome[4], outcome[6], outcome[7]
        if pool is not None and owner is not None:
            self.pool_owner[side][(pool, owner)] += n
        if sla is not None:
            self.sla_load[side][pool] += n

    def _spread_unchanged(self) -> None:
        for key, n in self._same.items():
            for side, counts in ((0, self.before), (1, self.after)):
                for field, value in zip(FIELDS, key, strict=False):
                    counts[field][value] += n
                self._count_side(side, key, n)
                self.scores[side][key[8]] += n
            self.status_matrix[(key[0], key[0])] += n
        for side in (0, 1):
            self.hits[side].update(self._same_hits)
        self._same.clear()
        self._same_hits.clear()

    def _sample(self, key: tuple[str, str | None, str | None], item: ReplayedLead) -> None:
        kept = self.samples[key]
        if len(kept) >= self.samples_per_transition or self._sampled >= self.max_samples:
            return
        self._sampled += 1
        field, old, new = key
        kept.append(Sample(
            lead_id=item.lead_id, field=field, from_=old, to=new,
            difference=_difference(field, item.before, item.after),
            rules_gained=[r for r in item.after.matched if r not in item.before.matched],
            rules_lost=[r for r in item.before.matched if r not in item.after.matched],
            before=item.before, after=item.after))

    def skip(self, skip: Skip) -> None:
        self.skipped[skip.reason] += 1

    def finish(self, *, candidate_rules: Iterable[str] = (),
               pools_before: Mapping[str, PoolFacts] | None = None,
               pools_after: Mapping[str, PoolFacts] | None = None,
               candidate_version: str = "", query: ReplayQuery | None = None) -> Report:
        """The report. ``candidate_rules``: every rule id of the candidate ruleset (those
        never hit are ``dead_rules``); ``pools_before``/``pools_after``: the pools as the
        stored decisions' rules and the candidate define them (weights for fairness)."""
        self._spread_unchanged()
        n = self.replayed
        trans = sorted(self.transitions.items(),
                       key=lambda kv: (FIELDS.index(kv[0][0]), -kv[1], str(kv[0][1:])))
        hits_b, hits_a = self.hits
        rules = [RuleHits(rule=r, before=hits_b[r], after=hits_a[r], delta=hits_a[r] - hits_b[r])
                 for r in set(hits_b) | set(hits_a)]
        rules.sort(key=lambda h: (-abs(h.delta), -h.after, h.rule))
        volumes = {name: _volumes(self.before[f], self.after[f]) for f, name in _NAMES.items()}
        return Report(
            replayed=n,
            skipped=Skipped(count=sum(self.skipped.values()),
                            by_reason=dict(sorted(self.skipped.items()))),
            changed=self.changed,
            changed_by_field={f: self.changed_by_field[f] for f in ("score", *FIELDS)},
            transitions=[Transition(field=f, from_=a, to=b, count=c) for (f, a, b), c in trans],
            status_matrix=[Transition(field="status", from_=a, to=b, count=c) for (a, b), c
                           in sorted(self.status_matrix.items())],
            by_pool=_volumes(self.before["pool"], self.after["pool"]),
            by_owner=self._owners(pools_before or {}, pools_after or {}),
            sla_load=_volumes(*self.sla_load),
            rules=rules,
            dead_rules=sorted(r for r in candidate_rules if not hits_a[r]),
            score_histogram=_bin_rows(*self.scores),
            score_mean_before=round(self.score_sum[0] / n, 4) if n else None,
            score_mean_after=round(self.score_sum[1] / n, 4) if n else None,
            samples=[s for key in sorted(self.samples, key=lambda k: (FIELDS.index(k[0]),
                                                                       -self.transitions[k]))
                     for s in self.samples[key]],
            rules_versions=dict(sorted(self.versions.items())),
            candidate_version=candidate_version, query=query, **volumes)

    def _owners(self, pools_before: Mapping[str, PoolFacts],
                pools_after: Mapping[str, PoolFacts]) -> list[OwnerRow]:
        pool_total: tuple[Counter[str], Counter[str]] = (Counter(), Counter())
        for side in (0, 1):
            for (pool, _), c in self.pool_owner[side].items():
                pool_total[side][pool] += c
        rows = []
        for vol in _volumes(self.before["owner"], self.after["owner"]):
            pools = sorted({p for side in (0, 1) for (p, o) in self.pool_owner[side]
                            if o == vol.key})
            fairness = [self._fairness(pool, vol.key or "", pool_total, pools_before,
                                       pools_after) for pool in pools]
            rows.append(OwnerRow(owner=vol.key, before=vol.before, after=vol.after,
                                 delta=vol.delta, fairness=fairness))
        return rows

    def _fairness(self, pool: str, owner: str, totals: tuple[Counter[str], Counter[str]],
                  pools_before: Mapping[str, PoolFacts],
                  pools_after: Mapping[str, PoolFacts]) -> FairnessRow:
        out: dict[str, Any] = {}
        for side, name, facts in ((0, "before", pools_before), (1, "after", pools_after)):
            leads, total = self.pool_owner[side][(pool, owner)], totals[side][pool]
            spec = facts.get(pool)
            weight = spec.weights.get(owner) if spec is not None else None
            weights = sum(spec.weights.values()) if spec is not None else 0.0
            out |= {f"leads_{name}": leads, f"weight_{name}": weight,
                    f"share_{name}": _ratio(leads, total),
                    f"fairness_{name}": _ratio(leads * weights, total * weight)
                    if total and weight else None}
        return FairnessRow(pool=pool, **out)


def pool_facts(ruleset: Ruleset) -> dict[str, PoolFacts]:
    """The pools of ``ruleset`` as the report compares them (members, weights, caps)."""
    facts = {}
    for pool_id, spec in ruleset.pools.items():
        caps = {}
        for rep, _ in spec.members:
            rep_spec = ruleset.reps.get(rep)
            cap = spec.daily_cap if spec.daily_cap is not None else \
                rep_spec.daily_cap if rep_spec is not None else None
            if cap is not None:
                caps[rep] = cap
        facts[pool_id] = PoolFacts(pool=pool_id, strategy=spec.strategy,
                                   weights={rep: float(w) for rep, w in spec.members},
                                   caps=caps)
    return facts


async def collect(items: AsyncIterator[ReplayedLead | Skip], *, candidate: Ruleset,
                  base: Ruleset | None = None, query: ReplayQuery | None = None,
                  builder: ReportBuilder | None = None,
                  on_item: Callable[[], None] | None = None) -> Report:
    """Drain a replay (``ReplayService.run``) into a report. ``candidate``: the rules the
    leads were replayed with; ``base``: the rules that decided them (the live ruleset), for
    the pools' weights before."""
    report = builder or ReportBuilder()
    async for item in items:
        if isinstance(item, Skip):
            report.skip(item)
        else:
            report.add(item)
        if on_item is not None:
            on_item()
    return report.finish(candidate_rules=[r.id for r in candidate.rules.values()],
                         pools_after=pool_facts(candidate),
                         pools_before=pool_facts(base or candidate),
                         candidate_version=candidate.version, query=query)
