"""``leadrouter rules tune``: proposed scoring points from outcomes (docs/outcomes.md, "Tune").

The method, on the decided leads of a window (router/services/outcome_reader.py):

1. Refuse below :data:`MIN_CONVERSIONS` conversions (:class:`TooFew`): fewer fit noise.
2. One 0/1 column per scoring rule of the ruleset that matched some but not all leads; split
   the leads 70/30 into training and holdout, stratified by outcome, with a fixed seed, after
   putting them in a canonical order (by rule hits and outcome): the same outcomes give the
   same proposal whatever order the leads arrived in.
3. Fit an L2-regularised logistic regression (scikit-learn, the ``analytics`` extra, imported
   only here) of "converted" on the columns of the training leads.
4. Significance by bootstrap: the fit again on ``bootstrap`` resamples of the training leads;
   a rule's coefficient is significant when it is more than z standard errors (the bootstrap
   standard deviation) from 0, z the two-sided 5% quantile Bonferroni-corrected for the number
   of rules fitted (so pure noise over 40 rules proposes nothing, instead of two rules by
   chance).
5. Points on the ruleset's own scale: coefficient * (standard deviation of the current points
   ÷ standard deviation of the coefficients, over the fitted rules), rounded to the ruleset's
   granularity (the largest of 10, 5, 2, 1 dividing at least 75% of its points). Rules with an
   insignificant coefficient, and rules without data, keep their points.
6. The holdout judges: AUC and top-decile lift of the current and the proposed points.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from router.services.calibration import LeadFacts
from router.services.calibration_stats import auc, lift, top_decile_lift

__all__ = ["INSTALL", "MIN_CONVERSIONS", "AnalyticsMissing", "TooFew", "TuneResult",
           "TunedRule", "granularity", "propose", "require_analytics"]

MIN_CONVERSIONS = 200
INSTALL = "pip install 'leadrouter[analytics]'"


class TooFew(ValueError):
    """Too few conversions to fit without fitting noise."""

    def __init__(self, have: int, need: int, target: str) -> None:
        super().__init__(f"{have} lead(s) reached {target!r} in the window; tuning needs at "
                         f"least {need} — widen --since, or wait for more outcomes "
                         "(POST /v1/leads/{id}/outcome)")
        self.have, self.need = have, need


class AnalyticsMissing(RuntimeError):
    def __init__(self) -> None:
        super().__init__(f"rules tune needs scikit-learn, which is not installed — {INSTALL} "
                         "(the service itself does not need it)")


class TunedRule(msgspec.Struct, frozen=True, kw_only=True):
    rule: str
    group: str | None
    points: float  # current
    proposed: float
    coef: float | None  # None: not fitted (no data, or matched every lead)
    se: float | None
    z: float | None
    significant: bool
    matched: int
    lift: float | None  # conversion when matched ÷ when not (all leads of the window)
    why: str


class TuneResult(msgspec.Struct, frozen=True, kw_only=True):
    target: str
    leads: int
    converted: int
    train: int
    holdout: int
    auc_current: float
    auc_proposed: float
    lift_current: float  # top-decile lift on the holdout
    lift_proposed: float
    scale: float
    granularity: float
    z_threshold: float
    bootstrap: int
    rules: tuple[TunedRule, ...]  # by coefficient, largest first (not fitted last)

    @property
    def changed(self) -> tuple[TunedRule, ...]:
        """The rules whose points change, the largest change first."""
        moved = [r for r in self.rules if r.proposed != r.points]
        return tuple(sorted(moved, key=lambda r: -abs(r.proposed - r.points)))


def granularity(points: Sequence[float]) -> float:
    """The step the ruleset's points are written in (e.g. 5 for the shipped rules)."""
    values = [p for p in points if p]
    for step in (10, 5, 2, 1):
        if values and sum(1 for p in values if p % step == 0) >= 0.75 * len(values):
            return float(step)
    return 1.0


def require_analytics() -> Any:
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise AnalyticsMissing() from None
    return LogisticRegression


def _matrix(rows: Sequence[LeadFacts], scored: Mapping[str, tuple[str | None, float]]
            ) -> tuple[list[str], dict[str, int], Any, Any]:
    """The fitted rules (matched some, not all, leads), every rule's hit count, X and y."""
    import numpy as np

    counts = {rule: 0 for rule in scored}
    for r in rows:
        for rule in r.rules:
            if rule in counts:
                counts[rule] += 1
    cols = [rule for rule, n in counts.items() if 0 < n < len(rows)]
    index = {rule: i for i, rule in enumerate(cols)}
    x = np.zeros((len(rows), len(cols)))
    for i, r in enumerate(rows):
        for rule in r.rules:
            j = index.get(rule)
            if j is not None:
                x[i, j] = 1.0
    return cols, counts, x, np.array([r.converted for r in rows], dtype=np.int8)


def _fit(x: Any, y: Any, *, holdout: float, bootstrap: int, c: float, seed: int
         ) -> tuple[Any, Any, Any, int]:
    """(holdout mask, coefficients, their bootstrap standard errors, resamples used)."""
    import numpy as np

    model_of = require_analytics()
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for label in (0, 1):  # stratified holdout
        members = rng.permutation(np.flatnonzero(y == label))
        test[members[:round(len(members) * holdout)]] = True
    xt, yt = x[~test], y[~test]
    if x.shape[1] == 0:
        return test, np.zeros(0), np.zeros(0), 0

    def fit(xs: Any, ys: Any) -> Any:
        return model_of(C=c, max_iter=1000).fit(xs, ys).coef_[0]

    coef = fit(xt, yt)
    draws = []
    for _ in range(bootstrap):
        pick = rng.integers(0, len(yt), len(yt))
        if yt[pick].min() != yt[pick].max():
            draws.append(fit(xt[pick], yt[pick]))
    se = np.std(np.array(draws), axis=0, ddof=1) if len(draws) > 1 else \
        np.full(len(coef), math.inf)
    return test, coef, se, len(draws)


def _judge(rule: str, group: str | None, points: float, fitted: tuple[float, float] | None,
           found: tuple[float, float, float] | None, matched: int, *, z_thr: float,
           scale: float, step: float) -> TunedRule:
    shown = None if found is None else found[0]
    if fitted is None:
        return TunedRule(rule=rule, group=group, points=points, proposed=points, coef=None,
                         se=None, z=None, significant=False, matched=matched, lift=shown,
                         why="not fitted: it matched " + ("no lead" if matched == 0
                                                          else "every lead"))
    b, s = fitted
    zv = b / s if s > 0 else (math.inf if b else 0.0)
    sig = abs(zv) > z_thr
    proposed = round(scale * b / step) * step + 0.0 if sig else points
    why = (f"converts {found[0]:.2f}x when matched ({found[1]:.2f}-{found[2]:.2f}); "
           if found is not None else "") + f"coefficient {b:+.2f} ± {s:.2f} (z {zv:+.1f})"
    why += (": the current points already fit" if proposed == points else "") if sig else \
        f": not significant (|z| <= {z_thr:.1f}), points kept"
    return TunedRule(rule=rule, group=group, points=points, proposed=proposed, coef=b, se=s,
                     z=zv, significant=sig, matched=matched, lift=shown, why=why)


def propose(rows: Sequence[LeadFacts], rules: Mapping[str, tuple[str | None, float | None]], *,
            target: str, seed: int = 0, holdout: float = 0.3, bootstrap: int = 100,
            c: float = 1.0) -> TuneResult:
    """The proposal for ``rules`` (scoring rule id → (group, current points)) from ``rows``."""
    converted = sum(1 for r in rows if r.converted)
    if converted < MIN_CONVERSIONS:
        raise TooFew(converted, MIN_CONVERSIONS, target)
    require_analytics()
    import numpy as np

    # A canonical order: leads with the same rule hits and outcome are interchangeable, so
    # the split and the bootstrap depend on the data alone, not on the order leads arrived in.
    rows = sorted(rows, key=lambda r: (sorted(r.rules), r.converted))

    scored = {rule: (group, float(points)) for rule, (group, points) in rules.items()
              if points is not None}
    cols, counts, x, y = _matrix(rows, scored)
    test, coef, se, used = _fit(x, y, holdout=holdout, bootstrap=bootstrap, c=c, seed=seed)
    z_thr = statistics.NormalDist().inv_cdf(1 - 0.05 / (2 * max(1, len(cols))))
    current = [scored[rule][1] for rule in cols]
    spread = float(np.std(coef)) if cols else 0.0
    scale = float(np.std(current)) / spread if spread > 0 else 0.0
    step = granularity([p for _, p in scored.values()])
    hits = {rule: 0 for rule in scored}
    for r in rows:
        if r.converted:
            for rule in r.rules:
                if rule in hits:
                    hits[rule] += 1
    index = {rule: i for i, rule in enumerate(cols)}
    tuned = []
    for rule, (group, points) in scored.items():
        j = index.get(rule)
        found = lift(hits[rule], counts[rule], converted - hits[rule], len(rows) - counts[rule])
        tuned.append(_judge(rule, group, points, None if j is None else
                            (float(coef[j]), float(se[j])), found, counts[rule], z_thr=z_thr,
                            scale=scale, step=step))
    proposed = {t.rule: t.proposed for t in tuned}
    tuned.sort(key=lambda t: (t.coef is None, -(t.coef or 0.0)))
    xh, yh = x[test], [bool(v) for v in y[test]]
    now = (xh @ np.array(current)).tolist() if cols else [0.0] * len(yh)
    new = (xh @ np.array([proposed[rule] for rule in cols])).tolist() if cols else now
    return TuneResult(
        target=target, leads=len(rows), converted=converted, train=int((~test).sum()),
        holdout=int(test.sum()), auc_current=auc(now, yh), auc_proposed=auc(new, yh),
        lift_current=top_decile_lift(now, yh), lift_proposed=top_decile_lift(new, yh),
        scale=scale, granularity=step, z_threshold=z_thr, bootstrap=used, rules=tuple(tuned))
