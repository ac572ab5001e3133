"""The person a lead's decision reads, between the state layer and :func:`decide`.

A new lead's person is read in the prefetch pipeline (:func:`person_read`, no extra round trip)
and found again in what it returned (:func:`prefetched_person`); re-scoring gets the person
from the event script. Either way :func:`snapshot_of` turns it into the
:class:`~router.services.decide.DecisionSnapshot` the decision is made on. Live routing and
re-scoring both use these, so neither service imports the other.
"""

from __future__ import annotations

import datetime as dt

from leadrouter_sdk import Lead

from router.engine.ruleset import Ruleset
from router.services.decide import DecisionSnapshot, PersonFacts
from router.state.engagement import PersonRead, PersonState, email_person
from router.state.models import Prefetched

__all__ = ["person_read", "prefetched_person", "snapshot_of"]


def person_read(lead: Lead, ruleset: Ruleset, *, person: str | None = None) -> PersonRead | None:
    """The prefetch read of the lead's person (None without an email). ``person``: the
    email's ``person_hash`` if the caller has it already."""
    if not lead.email:
        return None
    key = "e:" + person if person is not None else email_person(lead.email)
    return PersonRead(key, ruleset.engagement_events)


def prefetched_person(pre: Prefetched) -> PersonState | None:
    """The person :func:`person_read` read in ``pre``'s pipeline, if it was read."""
    return next((x for x in pre.extra if isinstance(x, PersonState)), None)


def snapshot_of(person: PersonState | None, *, now: dt.datetime, account_owner: str | None,
                lead_at: dt.datetime | None = None) -> DecisionSnapshot:
    """The decision's snapshot of ``person`` (None: nothing was read). ``lead_at``: when the
    lead was decided before (re-scoring; see :class:`DecisionSnapshot`)."""
    if person is None:
        return DecisionSnapshot(now=now, account_owner=account_owner, lead_at=lead_at)
    return DecisionSnapshot(
        now=now, account_owner=account_owner, lead_at=lead_at,
        person=PersonFacts(activity=person.activity, traits=person.traits,
                           traits_at=person.traits_at))
