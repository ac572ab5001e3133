"""The interval arithmetic of score calibration (router/services/calibration.py) and tuning
(router/services/tune.py): pure functions over counts, no I/O.

* :func:`wilson` — the 95% Wilson score interval of a conversion rate ``k / n``: unlike the
  normal approximation it stays inside [0, 1] and is honest for small ``n`` and rates near 0.
* :func:`lift` — the ratio of two conversion rates (leads a rule matched over those it did
  not) with its 95% interval by the Katz log method; a zero cell gets the Haldane correction
  (0.5 added to every cell) so the interval stays finite.
* :func:`auc` and :func:`top_decile_lift` — how well a score ranks converted leads first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["Z95", "auc", "lift", "top_decile_lift", "wilson"]

Z95 = 1.959963984540054  # the two-sided 95% normal quantile


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``k`` conversions in ``n`` leads; (0, 1) for ``n == 0``."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def lift(a: int, n1: int, b: int, n0: int, z: float = Z95
         ) -> tuple[float, float, float] | None:
    """(rate ratio, low, high) of ``a / n1`` over ``b / n0``; None when a side is empty."""
    if n1 <= 0 or n0 <= 0:
        return None
    fa, fn1, fb, fn0 = float(a), float(n1), float(b), float(n0)
    if a == 0 or b == 0 or a == n1 or b == n0:  # Haldane: keep the logs finite
        fa, fn1, fb, fn0 = fa + 0.5, fn1 + 1.0, fb + 0.5, fn0 + 1.0
    ratio = (fa / fn1) / (fb / fn0)
    se = math.sqrt(max(0.0, 1 / fa - 1 / fn1 + 1 / fb - 1 / fn0))
    log = math.log(ratio)
    shown = (a / n1) / (b / n0) if b > 0 else ratio
    return shown, math.exp(log - z * se), math.exp(log + z * se)


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """The area under the ROC curve: the chance that a converted lead outscores one that did
    not (ties count half). 0.5 when one class is missing."""
    pairs = sorted(zip(scores, labels, strict=True), key=lambda p: p[0])
    positives = sum(1 for _, y in pairs if y)
    negatives = len(pairs) - positives
    if positives == 0 or negatives == 0:
        return 0.5
    rank_sum = 0.0
    i = 0
    while i < len(pairs):  # average ranks over ties
        j = i
        while j + 1 < len(pairs) and pairs[j + 1][0] == pairs[i][0]:
            j += 1
        mid = (i + j) / 2 + 1
        rank_sum += mid * sum(1 for k in range(i, j + 1) if pairs[k][1])
        i = j + 1
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def top_decile_lift(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Conversion rate of the top 10% by score over the overall rate (ties at the cut are
    taken at their average rate, so the order of equal scores does not matter)."""
    n = len(scores)
    total = sum(1 for y in labels if y)
    if n == 0 or total == 0:
        return 0.0
    cut = max(1, math.ceil(n / 10))
    ordered = sorted(zip(scores, labels, strict=True), key=lambda p: -p[0])
    threshold = ordered[cut - 1][0]
    above = [y for s, y in ordered if s > threshold]
    tied = [y for s, y in ordered if s == threshold]
    take = cut - len(above)
    hits = sum(above) + (sum(tied) * take / len(tied) if tied else 0.0)
    return (hits / cut) / (total / n)
