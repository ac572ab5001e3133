"""What a notification channel (Slack, email, ...) tells a rep about one outbox event.

Shared by ``leadrouter-slack`` and ``leadrouter-email``: :func:`notice` turns an
:class:`~leadrouter_sdk.Event` into a channel-neutral :class:`Notice` (who, what happened, the
lead's summary, why it was routed there, the due time, the signed action links), so every
channel says the same thing. Pure: no I/O, no clock.

The event carries (see docs/notifications.md): ``owner`` (or ``rep``), ``pool``, ``due_at``
(or ``due``), ``reason``, ``decision`` (the stored decision: ``lead``, ``score``, ``status``,
``explanation``), ``owner_timezone`` (the rep's IANA zone from rules/reps.yaml, added by the
service at delivery), and, when action links are configured (``LEADROUTER_LINK_SECRET``),
``links`` (``{"accept": url, "contacted": url, "reject": url, "expires_at": iso}``);
``sla.warning`` adds ``minutes_left``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from leadrouter_sdk.hookspecs import Event

__all__ = ["ACTIONS", "DEFAULT_EVENTS", "Notice", "notice"]

DEFAULT_EVENTS: Final = ("lead.assigned", "lead.reassigned", "lead.rerouted",
                         "lead.requalified", "sla.warning", "lead.breached")
ACTIONS: Final = ("accept", "contacted", "reject")
_HEADLINES: Final = {
    "lead.assigned": "New lead for you",
    "lead.reassigned": "A lead was reassigned to you",
    "lead.rerouted": "A lead was routed to you",
    "lead.requalified": "A lead was routed to you",
    "sla.warning": "Lead due soon",
    "lead.breached": "Lead SLA breached",
}
_SKIPPED: Final = frozenset({"scoring", "engagement", "grade"})
# the engine's how-it-matched notes: not why, for a rep
_BOILERPLATE: Final = ("first match", "highest grade", "none of ")
_SUMMARY_FIELDS: Final = (("title", "Title"), ("company", "Company"), ("industry", "Industry"),
                          ("employees", "Employees"), ("country", "Country"))


class Notice(msgspec.Struct, frozen=True, kw_only=True):
    """One message to one rep (or a pool's channel), channel-neutral."""

    event_id: str
    kind: str  # the event type
    headline: str
    lead_id: str
    rep: str | None
    pool: str | None
    name: str  # the lead's name, or its company, or its id
    summary: tuple[tuple[str, str], ...]  # (label, value), e.g. ("Company", "Acme")
    score: str | None  # "87 (A)"
    why: tuple[str, ...]  # why it was routed here, one line per explanation step
    due: dt.datetime | None  # UTC
    timezone: str | None  # the rep's IANA zone, when known
    minutes_left: int | None
    links: dict[str, str]  # action → signed URL (empty without a link secret)
    expires_at: dt.datetime | None


def _when(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str) and value:
        try:
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return None


def _text(data: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = data.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _why(data: Mapping[str, Any], record: Mapping[str, Any]) -> tuple[str, ...]:
    lines: list[str] = []
    steps = record.get("explanation")
    for step in steps if isinstance(steps, list | tuple) else ():
        if not isinstance(step, dict) or step.get("stage") in _SKIPPED:
            continue
        parts = [str(step.get("stage", "")).replace("_", " ")]
        if step.get("outcome") not in (None, ""):
            parts.append(f"{step['outcome']}")
        line = ": ".join(parts)
        if step.get("rule"):
            line += f" (rule {step['rule']})"
        detail = str(step.get("detail") or "")
        if detail and not detail.startswith(_BOILERPLATE):
            line += f": {detail}"
        lines.append(line)
    reason = _text(data, "reason")
    if reason and all(reason not in line for line in lines):
        lines.append(reason)
    return tuple(lines[:10])


def notice(event: Event) -> Notice:
    """The notice of ``event`` (any type; the channel decides which types it sends)."""
    data = event.data
    raw = data.get("decision")
    record: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    lead_raw = record.get("lead")
    lead: Mapping[str, Any] = lead_raw if isinstance(lead_raw, dict) else {}
    full = " ".join(p for p in (_text(lead, "first_name"), _text(lead, "last_name")) if p)
    summary = tuple((label, str(lead[key])) for key, label in _SUMMARY_FIELDS
                    if lead.get(key) not in (None, ""))
    score_raw = record.get("score")
    score = None
    if isinstance(score_raw, dict) and isinstance(score_raw.get("total"), int | float):
        score = f"{score_raw['total']:g}"
        if score_raw.get("grade"):
            score += f" ({score_raw['grade']})"
    links_raw = data.get("links")
    links = ({k: v for k, v in links_raw.items() if k in ACTIONS and isinstance(v, str) and v}
             if isinstance(links_raw, dict) else {})
    left = data.get("minutes_left")
    try:
        minutes_left = int(float(left)) if left not in (None, "") else None
    except (TypeError, ValueError):
        minutes_left = None
    return Notice(event_id=event.id, kind=event.type,
                  headline=_HEADLINES.get(event.type, event.type), lead_id=event.lead_id,
                  rep=_text(data, "owner", "rep"), pool=_text(data, "pool"),
                  name=full or _text(lead, "company") or event.lead_id, summary=summary,
                  score=score, why=_why(data, record),
                  due=_when(data.get("due_at") or data.get("due")),
                  timezone=_text(data, "owner_timezone", "timezone"), minutes_left=minutes_left,
                  links=links, expires_at=_when(
                      (links_raw.get("expires_at") if isinstance(links_raw, dict) else None)
                      or data.get("expires_at")))
