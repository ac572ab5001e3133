"""The names a rule may use, their kinds, and which stage makes each one available.

Lead fields come straight from the ``Lead`` Struct, so adding a field there makes it usable in
rules (and documented: a test checks docs/rules.md lists every name here).
"""

from __future__ import annotations

import datetime
import typing
from collections.abc import Mapping

import pycountry
from leadrouter_sdk import Lead

from router.engine._regions import REGION_OF, REGIONS
from router.engine.expr import Scope
from router.engine.functions import ANY, BOOL, NUM, STR, TIME, Function
from router.engine.schema import STATUSES

__all__ = ["DERIVED", "LEAD_FIELDS", "STAGE_ORDER", "STAGE_OUTPUTS", "scope_for"]


def _kind(tp: object) -> str:
    args = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
    first = args[0]
    if first is bool:
        return BOOL
    if first in (int, float):
        return NUM
    if first is str:
        return STR
    if first is datetime.datetime:
        return TIME
    return ANY


LEAD_FIELDS: dict[str, str] = {
    name: _kind(tp) for name, tp in typing.get_type_hints(Lead).items() if name != "attributes"
}

DERIVED: dict[str, tuple[str, str]] = {
    "email_domain": (STR, "the domain of the email address"),
    "company_domain": (STR, "the company's domain: `domain`, else the email's domain unless it "
                       "is a free or disposable mailbox"),
    "free_email": (BOOL, "the email is at a free mailbox provider"),
    "disposable_email": (BOOL, "the email is at a disposable mail domain"),
    "region": (STR, "sales region of the country: NA, LATAM, EMEA or APAC"),
    "account_owner": (STR, "rep owning the account of the company domain (set through the "
                      "accounts API), or null"),
    "now": (TIME, "the evaluation time (UTC)"),
}

STAGE_ORDER = ("scoring", "qualification", "territories", "segments", "assignment", "sla")

# name -> (kind, the stage that produces it, description)
STAGE_OUTPUTS: dict[str, tuple[str, str, str]] = {
    "fit": (NUM, "scoring", "points from fit rules"),
    "bant": (NUM, "scoring", "points from BANT rules"),
    "engagement": (NUM, "scoring", "points from engagement rules"),
    "score": (NUM, "scoring", "total points"),
    "grade": (STR, "scoring", "letter grade from the grades table"),
    "status": (STR, "qualification", "bad_lead, nurture, mql or sql"),
    "territory": (STR, "territories", "id of the matched territory, or null"),
    "segment": (STR, "segments", "id of the matched segment, or null"),
    "pool": (STR, "assignment", "pool chosen by the assignment rule, or null"),
    "queue": (STR, "assignment", "queue chosen by the assignment rule, or null"),
}

# Names that always hold a value: the point totals start at 0, status has a default (nurture)
# and `now` is always given.
_NEVER_NULL = frozenset({"fit", "bant", "engagement", "score", "status", "now"})

_COUNTRIES = frozenset({c.alpha_2 for c in pycountry.countries} | set(REGION_OF))


def scope_for(stage: str, *, functions: Mapping[str, Function], grades: frozenset[str],
              territories: frozenset[str], segments: frozenset[str], pools: frozenset[str],
              reps: frozenset[str], hit_ids: frozenset[str],
              grade_thresholds: Mapping[str, float] | None = None) -> Scope:
    """The scope of ``stage``: every name an earlier stage produced, nothing later."""
    names: dict[str, str] = dict(LEAD_FIELDS)
    names.update({k: v[0] for k, v in DERIVED.items()})
    names["attributes"] = ANY
    later: dict[str, str] = {}
    position = STAGE_ORDER.index(stage)
    for name, (kind, producer, _) in STAGE_OUTPUTS.items():
        if STAGE_ORDER.index(producer) < position:
            names[name] = kind
        else:
            later[name] = producer
    del names["attributes"]
    domains = {
        "country": _COUNTRIES,
        "region": frozenset(REGIONS),
        "region()": frozenset(REGIONS),
        "status": frozenset(STATUSES),
        "grade": grades,
        "territory": territories,
        "segment": segments,
        "pool": pools,
        "account_owner": reps,
    }
    ranks = {"status": {s: float(i) for i, s in enumerate(STATUSES)},
             "grade": dict(grade_thresholds or {})}
    return Scope(stage=stage, names=names, later=later, domains=domains, ranks=ranks,
                 functions=functions, hit_ids=hit_ids if position > 0 else None,
                 never_null=_NEVER_NULL & names.keys())
