"""What the engagement retention means for the rules being served.

``LEADROUTER_ENGAGEMENT_RETENTION`` caps how long a person's engagement is kept (see
router/state/engagement.py, :meth:`EngagementLimits.retained`). A rule whose ``count()`` window
is longer than that can only ever count the retained events, and a person whose engagement
expired before their lead no longer re-scores it by email. Both are legitimate choices (privacy
rules may demand a short retention) but must not be a surprise: :func:`warnings` says what the
current ruleset loses, and :func:`log_warnings` logs it at start-up and after every reload
(router/app/application.py registers it as a rules listener).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from router.engine.ruleset import CompiledRule, Ruleset

__all__ = ["duration_text", "log_warnings", "warnings"]

log = logging.getLogger("leadrouter.engagement")

_DAY = 86_400


def duration_text(seconds: int) -> str:
    """``400d``, ``36h``, ``90m``, ``45s``: the largest unit that divides it."""
    for unit, size in (("d", _DAY), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _windows(ruleset: Ruleset) -> Iterator[tuple[CompiledRule, str, int]]:
    """(rule, event type, days) of every ``count()`` a rule's condition makes, as the checker
    recorded them (each stage keeps the checked expression of every rule)."""
    for stage in ruleset.stages:
        for rule, expr in zip(stage.rules, stage.exprs, strict=False):
            for event, days in sorted(expr.windows):
                yield rule, event, days


def warnings(ruleset: Ruleset, *, retention: int, decision_retention: int) -> list[str]:
    """What ``ruleset`` cannot see with an engagement retention of ``retention`` seconds
    (decisions kept ``decision_retention`` seconds); empty when nothing is lost."""
    keep = duration_text(retention)
    out = []
    for rule, event, days in _windows(ruleset):
        if days * _DAY > retention:
            where = f"{rule.file}:{rule.line}" if rule.line else rule.file
            out.append(
                f"rule {rule.id} ({where}) counts {event!r} over {days} days, but "
                f"LEADROUTER_ENGAGEMENT_RETENTION={keep}: engagement is not kept beyond "
                f"{keep}, so this count can miss events older than that (raise the "
                f"retention to at least {days}d or shorten the window)")
    spec = ruleset.engagement
    if spec is not None and spec.events and retention * 1000 < spec.half_life_ms:
        out.append(
            f"engagement points decay with a half-life of {spec.half_life_text}, but "
            f"LEADROUTER_ENGAGEMENT_RETENTION={keep} deletes a person's engagement {keep} after "
            f"their last event, while it is still worth more than half its points")
    if ruleset.engagement_events and retention < decision_retention:
        out.append(
            f"LEADROUTER_ENGAGEMENT_RETENTION={keep} is shorter than "
            f"LEADROUTER_DECISION_RETENTION={duration_text(decision_retention)}: once a "
            f"person's engagement has expired, events sent with their email no longer re-score "
            f"the lead they had (events sent with its lead_id still do)")
    return out


def log_warnings(ruleset: Ruleset, *, retention: int, decision_retention: int) -> list[str]:
    """Log :func:`warnings` (one line each, with the rules version); returns them."""
    found = warnings(ruleset, retention=retention, decision_retention=decision_retention)
    for text in found:
        log.warning("engagement retention: %s", text,
                    extra={"rules_version": ruleset.version})
    return found
