"""What every lead must bring, whatever path it came in by: the ``leads:`` section.

``rules/intake.yaml`` may hold a top-level ``leads:`` mapping (docs/intake.md, "What a lead must
bring"):

* ``require_any_of`` (default ``[email, phone]``): lead fields of which at least one must have a
  value — a lead nobody can reach is refused with 422 ``contact-required`` naming them. An empty
  list turns the check off.
* ``external_id_repeat`` (default ``reject``): what a lead whose ``external_id`` was already
  routed, sent with *different* data, gets: ``reject`` (422 ``idempotency-mismatch``, like a
  reused ``Idempotency-Key``), ``duplicate`` (the first decision, the new data ignored: the
  earlier behaviour) or ``update`` (the stored lead takes the new data and is decided again,
  like an engagement re-qualification: router/services/engagement.py ``update``). A source
  may set its own (``sources: {hubspot: {external_id_repeat: update}}``); HubSpot and Segment
  sources default to ``update`` (:func:`repeat_of`).

The check itself (:func:`missing_contact`) is called by the two places every intake path goes
through before routing: ``router/api/leads.py`` (``POST /v1/leads`` and batches) and
``router/api/intake.py`` (forms and sources).
"""

from __future__ import annotations

import difflib
from typing import Any, Final, Literal

import msgspec
from leadrouter_sdk import Lead

from router.engine import Document, RuleError

__all__ = ["REPEATS", "LeadPolicy", "LeadsSpec", "compile_leads", "missing_contact", "repeat_of"]

REPEATS: Final = ("reject", "duplicate", "update")
_FIELDS: Final = tuple(f for f in Lead.__struct_fields__ if f != "attributes")


class LeadsSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The YAML shape of ``leads:``."""

    require_any_of: list[str] = msgspec.field(default_factory=lambda: ["email", "phone"])
    external_id_repeat: Literal["reject", "duplicate", "update"] = "reject"
    description: str | None = None


class LeadPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """The compiled ``leads:`` section (the defaults when a rules directory has none)."""

    require_any_of: tuple[str, ...] = ("email", "phone")
    external_id_repeat: str = "reject"


DEFAULT: Final = LeadPolicy()


def compile_leads(doc: Document, path: tuple[str | int, ...], value: Any,
                  errors: list[RuleError]) -> LeadPolicy:
    """The ``leads:`` section checked: lead field names (with a "did you mean") and the repeat
    mode. On an error it is appended (``file:line: message — fix``) and the defaults stand."""
    spec: LeadsSpec | None = doc.decode(path, value if value is not None else {}, LeadsSpec,
                                        errors)
    if spec is None:
        return DEFAULT
    n = len(errors)
    for i, name in enumerate(spec.require_any_of):
        if name not in _FIELDS:
            close = difflib.get_close_matches(name, _FIELDS, n=1, cutoff=0.6)
            errors.append(doc.error(
                (*path, "require_any_of", i), f"`{name}` is not a lead field",
                fix=f"did you mean `{close[0]}`?" if close else
                "name lead fields, e.g. [email, phone]; [] turns the check off"))
    if len(errors) > n:
        return DEFAULT
    return LeadPolicy(require_any_of=tuple(dict.fromkeys(spec.require_any_of)),
                      external_id_repeat=spec.external_id_repeat)


def missing_contact(lead: Lead, policy: LeadPolicy) -> tuple[str, ...]:
    """The ``require_any_of`` fields when ``lead`` has none of them (empty: it has one)."""
    wanted = policy.require_any_of
    for name in wanted:
        value = getattr(lead, name)
        if value is not None and not (isinstance(value, str) and not value.strip()):
            return ()
    return wanted


# A CRM contact or a Segment user keeps its id while it changes: a repeat is an update (with
# `reject` the CRM would get 422 for every change and may retry it forever).
_SOURCE_DEFAULTS: Final = {"hubspot": "update", "segment": "update"}


def repeat_of(policy: LeadPolicy, *, own: str | None = None, kind: str | None = None) -> str:
    """The ``external_id_repeat`` of one channel: the source's own setting (``own``), else its
    type's default (HubSpot, Segment: ``update``), else the ``leads:`` section's."""
    if own is not None:
        return own
    return _SOURCE_DEFAULTS.get(kind or "", policy.external_id_repeat)
