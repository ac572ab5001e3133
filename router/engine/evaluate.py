"""Pure evaluation of one lead: enrich → score → grade → qualify → territory → segment →
assignment rule → SLA policy.

Pure means: no I/O, no clock, no randomness. The caller passes the lead, a snapshot of the state
the rules read (engagement counts, the account owner) and ``now``; the same inputs always give
the same :class:`Evaluation`. Picking a rep inside a pool needs live state and happens later,
atomically, in the state layer; the engine only decides *which* pool, queue or owner.

This is the hot path (target: ≥ 100k leads/s on one core), so it allocates little: each rule's
``Contribution`` and ``Route`` are built once at load, and the readable explanation
(:func:`explain`) is rendered from the compact result only when someone stores or shows it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from leadrouter_sdk import Contribution, Lead, Score, Step

from router.engine._regions import REGION_OF
from router.engine.engagement import Activity
from router.engine.engagement import contributions as engagement_contributions
from router.engine.functions import domain_of, is_disposable_domain, is_free_domain
from router.engine.ruleset import CompiledRule, Route, Ruleset, Stage

__all__ = ["DEFAULT_QUEUE", "DEFAULT_STATUS", "DERIVED_VALUES", "NO_RULE", "Evaluation", "Route",
           "Snapshot", "Step", "build_env", "derived", "derived_values", "evaluate", "explain",
           "owner_route"]

DEFAULT_QUEUE = "unassigned"
DEFAULT_STATUS = "nurture"
# The route when no assignment rule matches; another backend must produce exactly this one.
NO_RULE = Route(kind="queue", target=DEFAULT_QUEUE, rule=None,
                 reason="no assignment rule matched; the lead waits in the default queue")


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The state a ruleset reads for one lead, fetched before evaluation."""

    account_owner: str | None = None
    counts: dict[tuple[str, int], int] = {}
    last: dict[str, dt.datetime] = {}
    # The person's stored events, for the decaying points of the `engagement:` section
    # (router/engine/engagement.py); counts/last above are derived from it by the caller.
    activity: Activity | None = None


class Evaluation(msgspec.Struct, frozen=True):
    """Everything the rules decided about one lead.

    ``decided`` holds, for qualification, territories, segments, assignment and sla, the index
    of the matching rule in its stage (-1 for none): :func:`explain` turns it into sentences.
    Build it with keywords; the fused function alone passes the fields by position (msgspec
    matches keywords by name, ~70 ns of the hot path), so the field order is fixed.
    """

    rules_version: str
    score: Score
    status: str
    territory: str | None
    segment: str | None
    route: Route
    sla_policy: str | None
    matched: tuple[str, ...]
    decided: tuple[int, int, int, int, int]
    errors: tuple[str, ...] = ()


_EMPTY = Snapshot()


# The derived names computed from the lead alone, in the order derived_values() returns them.
DERIVED_VALUES = ("email_domain", "company_domain", "free_email", "disposable_email", "region")


def derived_values(lead: Lead) -> tuple[str | None, str | None, bool, bool, str | None]:
    """The derived names of :data:`DERIVED_VALUES`, as a tuple (the fused function unpacks it
    into locals: no dict to build and read back on the hot path)."""
    email = lead.email
    # Lead normalisation lower-cases and checks the email, so the domain is what follows "@"
    # (without a leading "www.", like domain(): the compiler reads this for domain(email)).
    email_domain = email.rpartition("@")[2] or None if email else None
    if email_domain is not None and email_domain.startswith("www."):
        email_domain = domain_of(email)
    free = is_free_domain(email_domain)
    disposable = is_disposable_domain(email_domain)
    domain = lead.domain
    company_domain = (domain_of(domain) if domain else None) or (
        email_domain if email_domain and not free and not disposable else None)
    country = lead.country
    return (email_domain, company_domain, free, disposable,
            REGION_OF.get(country) if country else None)


def derived(lead: Lead, snapshot: Snapshot, now: dt.datetime) -> dict[str, Any]:
    """The names the rules read besides the lead's own fields, by name."""
    names: dict[str, Any] = dict(zip(DERIVED_VALUES, derived_values(lead), strict=True))
    names["account_owner"] = snapshot.account_owner
    return names


def build_env(lead: Lead, snapshot: Snapshot, now: dt.datetime) -> dict[str, Any]:
    """The flat name → value mapping the per-stage functions read (lead fields + derived)."""
    env = msgspec.structs.asdict(lead)
    env.update(derived(lead, snapshot, now))
    env.update(now=now, _counts=snapshot.counts, _last=snapshot.last)
    return env


def evaluate(ruleset: Ruleset, lead: Lead, snapshot: Snapshot | None = None, *,
             now: dt.datetime, extra: tuple[Contribution, ...] = ()) -> Evaluation:
    """Decide everything the rules decide about ``lead``; see the module docstring.

    ``extra`` holds contributions computed outside the rule files (plugin scorers); they are
    added to the score like rule contributions, and so are the decayed points of the
    ``engagement:`` section when the snapshot carries the person's ``activity``.
    """
    snap = snapshot or _EMPTY
    if snap.activity is not None and ruleset.engagement is not None:
        extra = (*extra, *engagement_contributions(ruleset.engagement, snap.activity, now))
    xf = xb = xe = xo = 0.0
    for c in extra:
        if c.group == "fit":
            xf += c.points
        elif c.group == "bant":
            xb += c.points
        elif c.group == "engagement":
            xe += c.points
        else:
            xo += c.points
    run = ruleset.run
    if run is None:  # a Ruleset built by hand without the fused function
        raise ValueError("ruleset was not compiled by the loader")
    # The fused function (router/engine/_fused.py) runs every stage and builds the Evaluation.
    ev: Evaluation = run(lead, derived_values(lead), snap.account_owner, now, snap.counts,
                         snap.last, xf, xb, xe, xo, extra, ruleset.version)
    return ev


def owner_route(rule: CompiledRule, owner: str, company_domain: str | None) -> Route:
    """The route of an ``assign: account_owner`` rule when the account has an owner."""
    return Route(kind="account_owner", target=owner, rule=rule.id,
                 reason=f"{company_domain or 'this domain'} is an account owned by {owner}")


# A stage's step depends only on which rule decided and what it decided, and a ruleset has few
# such pairs: the leads share the (frozen) Step objects instead of formatting them every time.
# Keyed by id(stage); the entry holds the stage, so a reused id never hits.
_STEPS: dict[tuple[int, int, str | None], tuple[Stage, Step]] = {}


def _step(stage: Stage, index: int, outcome: str | None, default: str) -> Step:
    key = (id(stage), index, outcome)
    hit = _STEPS.get(key)
    if hit is not None and hit[0] is stage:
        return hit[1]
    if index < 0:
        step = Step(stage=stage.name, outcome=outcome,
                    detail=f"none of {len(stage.rules)} rules matched; {default}")
    else:
        plural = "s" if index != 1 else ""
        step = Step(stage=stage.name, outcome=outcome, rule=stage.rules[index].id,
                    detail=f"first match; {index} earlier rule{plural} did not match")
    if len(_STEPS) >= 4096:
        _STEPS.clear()
    _STEPS[key] = (stage, step)
    return step


_UNGRADED = Step(stage="grade", outcome=None, detail="no grade threshold reached")


def _grade_step(grade: str | None) -> Step:
    if not grade:
        return _UNGRADED if grade is None else msgspec.structs.replace(_UNGRADED, outcome=grade)
    step = _GRADE_STEPS.get(grade)
    if step is None:
        if len(_GRADE_STEPS) >= 256:
            _GRADE_STEPS.clear()
        step = _GRADE_STEPS[grade] = Step(
            stage="grade", outcome=grade,
            detail="highest grade whose threshold the score reaches")
    return step


_GRADE_STEPS: dict[str, Step] = {}


def explain(ruleset: Ruleset, ev: Evaluation) -> tuple[Step, ...]:
    """The evaluation as readable steps: what each stage decided and which rule decided it.

    ``ruleset`` must be the one that produced ``ev`` (same ``version``).
    """
    q, t, s, a, p = ev.decided
    sc = ev.score
    steps = [
        Step(stage="scoring", outcome=f"{sc.total:g}",
             detail=f"{len(sc.contributions)} contribution(s): fit {sc.fit:g}, bant {sc.bant:g}, "
             f"engagement {sc.engagement:g}"),
        _grade_step(sc.grade),
        _step(ruleset.qualification, q, ev.status, f"default status {DEFAULT_STATUS}"),
        _step(ruleset.territories, t, ev.territory, "no territory"),
        _step(ruleset.segments, s, ev.segment, "no segment"),
        _step(ruleset.assignment, a, f"{ev.route.kind}:{ev.route.target}",
              f"queue {DEFAULT_QUEUE}"),
        _step(ruleset.sla, p, ev.sla_policy, "no SLA applies"),
    ]
    # Each decayed engagement contribution: event type, count, raw and decayed points, cap.
    steps[1:1] = [Step(stage="engagement", outcome=f"{c.points:g}", rule=c.rule,
                       detail=c.reason or "") for c in sc.contributions
                  if c.group == "engagement" and c.rule.startswith("engagement:")]
    for name in ev.errors:
        steps.append(Step(stage=name.split(":", 1)[0], outcome=None, rule=name.split(":", 1)[1],
                          detail="the rule raised an error and was treated as not matching"))
    return tuple(steps)
