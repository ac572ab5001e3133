"""Engagement events: ``POST /v1/events`` (one event or a batch) and ``GET /v1/engagement``.

Accepted shapes (router/intake/events.py: ``event_from_payload``): Segment ``track`` and
``identify`` messages, and the plain ``{email | lead_id | external_id, event, timestamp,
properties, messageId}``. A batch is ``{"batch": [...]}`` (Segment's), ``{"events": [...]}`` or
a JSON array; each item gets its own result or problem.

Who may call (router/api/auth.py): posting needs a key with the ``events`` scope when
``LEADROUTER_REQUIRE_API_KEY=true``; reading a person's engagement always needs the admin token
or a key with the ``viewer`` scope (it is personal data).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from leadrouter_sdk import Contribution as RuleContribution
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery
from litestar.plugins.problem_details import ProblemDetailsException

from router.api._body import decode_body, require_json
from router.api.auth import admin_or_key, require_key
from router.api.errors import problem, validation_problem
from router.api.openapi import json_body, problems
from router.engine.engagement import lines, windows
from router.intake.events import EventIn, event_from_payload
from router.services.engagement import EngagementService, EventResult
from router.services.keys import ApiKeys
from router.services.privacy import PrivacyService
from router.services.records import UnknownLead
from router.settings import Settings

__all__ = ["handlers"]

_MIN_BATCH = 500  # Segment sends up to 500 messages per batch


def _failure(exc: Exception, tp: Any) -> ProblemDetailsException:
    """404 for an unknown lead, else 422 naming the field (a misspelt one with the name it
    probably meant: ``tp`` is the shape decoded, :class:`PlainEvent` or a list of them)."""
    if isinstance(exc, UnknownLead):
        return problem(404, "Lead not found", str(exc), kind="lead-not-found")
    return validation_problem(exc, title="Invalid event", tp=tp)


class _Events(msgspec.Struct):
    events: list[msgspec.Raw] | None = None
    batch: list[msgspec.Raw] | None = None


def _items(body: bytes) -> list[Any] | None:
    """The batch's items (decoded), or None for a single event."""
    doc = msgspec.json.decode(body)
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        for key in ("batch", "events"):
            if key in doc:
                if not isinstance(doc[key], list):
                    raise msgspec.ValidationError(f"Expected an array - at `$.{key}`")
                return list(doc[key])
        return None
    raise msgspec.ValidationError("Expected an event object or a batch - at `$`")


class PlainEvent(msgspec.Struct, kw_only=True):
    """One event. Who: ``email``, ``lead_id``, ``external_id`` (+ ``source``), ``userId`` or
    ``anonymousId`` (an ``identify`` links the last two to an email). Segment ``track`` and
    ``identify`` messages (``type``, ``context.traits.email``, ``traits``) are accepted as
    they are; unknown keys are ignored, except a misspelling of a missing one (``timestmp``:
    422 with "did you mean `timestamp`?"). Send ``{"batch": [...]}`` or a JSON array for many."""

    type: str = "track"
    event: str | None = None
    email: str | None = None
    lead_id: str | None = None
    external_id: str | None = None
    source: str | None = None
    userId: str | None = None  # Segment's name
    anonymousId: str | None = None  # Segment's name
    timestamp: str | None = None
    messageId: str | None = None  # Segment's name
    properties: dict[str, Any] = {}
    traits: dict[str, Any] = {}
    context: dict[str, Any] = {}


class EventBatch(msgspec.Struct):
    """Many events (Segment's batch); a bare JSON array of events is accepted too."""

    batch: list[PlainEvent]


@post("/v1/events", tags=["events"], status_code=202,
      responses={200: ResponseSpec(dict[str, Any], generate_examples=False,
                                   description="A batch: one result or problem per item; one "
                                   "event: status duplicate for a messageId seen before"),
                 **problems(404, 415)},
      operation_class=json_body((PlainEvent, EventBatch, list[PlainEvent]), "One event, or "
                                "{\"batch\": [...]} / a JSON array of them.", name="Events"))
async def post_events(request: Request[Any, Any, Any],
                      engagement: NamedDependency[EngagementService],
                      settings: NamedDependency[Settings],
                      keys: NamedDependency[ApiKeys]) -> Response[Any]:
    """Record engagement events and re-score the leads they belong to.

    One event: ``202`` with what it did (``recorded`` / ``identified``, and ``lead`` when its
    lead was re-scored or re-qualified), ``200`` with ``status: duplicate`` for a messageId seen
    before. A batch: ``200`` with one result (or problem) per item, in order. With
    ``LEADROUTER_REQUIRE_API_KEY=true``: a key with the ``events`` scope (or the admin token)."""
    await require_key(request, settings, keys, "events")
    require_json(request.headers, also=("text/plain",))
    body = await request.body()
    items = decode_body(body, _items, title="Invalid event")
    if items is None:
        try:
            result = await engagement.ingest(event_from_payload(msgspec.json.decode(body)))
        except (UnknownLead, msgspec.ValidationError, ValueError) as exc:
            raise _failure(exc, PlainEvent) from None
        return Response(result, status_code=200 if result.status == "duplicate" else 202)
    limit = max(settings.batch_limit, _MIN_BATCH)
    if len(items) > limit:
        raise problem(413, "Batch too large", f"{len(items)} events in one batch; the limit is "
                      f"{limit} — split the batch", kind="batch-too-large", limit=limit)
    parsed: list[EventIn | Exception] = []
    for i, item in enumerate(items):
        try:
            parsed.append(event_from_payload(item, f"$[{i}]"))
        except (msgspec.ValidationError, ValueError) as exc:
            parsed.append(exc)
    good = [(i, ev) for i, ev in enumerate(parsed) if isinstance(ev, EventIn)]
    done = await engagement.ingest_many([ev for _, ev in good])
    outcome: dict[int, EventResult | Exception] = {i: p for i, p in enumerate(parsed)
                                                   if isinstance(p, Exception)}
    outcome.update({i: r for (i, _), r in zip(good, done, strict=True)})
    results: list[dict[str, Any]] = []
    for i in range(len(items)):
        got = outcome[i]
        if isinstance(got, Exception):
            resp = _failure(got, list[PlainEvent]).to_response(request)
            results.append({"index": i, "status": "failed", "problem": resp.content})
        else:
            results.append({"index": i, **msgspec.to_builtins(got)})
    counts = {name: sum(1 for r in results if r["status"] == name)
              for name in ("recorded", "identified", "duplicate", "ignored", "failed")}
    return Response({"results": results, **counts}, status_code=200)


class Contribution(msgspec.Struct, kw_only=True):
    event: str
    count: int
    points: float
    raw: float
    decayed: float
    cap: float | None
    capped: bool
    final: float
    last_at: dt.datetime | None


class TypeInfo(msgspec.Struct, kw_only=True):
    event: str
    count: int
    last_at: dt.datetime | None
    windows: dict[str, int]


class Engagement(msgspec.Struct, kw_only=True):
    lead_id: str | None
    seq: int
    at: dt.datetime
    half_life: str | None
    score: float  # the lead's engagement score now, as its decision adds it up
    contributions: list[Contribution]  # the decaying points of the engagement: section
    rules: list[RuleContribution]  # every engagement-group contribution of that decision
    events: list[TypeInfo]


@get("/v1/engagement", tags=["events"], responses=problems(404, 422))
async def get_engagement(request: Request[Any, Any, Any],
                         engagement: NamedDependency[EngagementService],
                         privacy: NamedDependency[PrivacyService],
                         settings: NamedDependency[Settings], keys: NamedDependency[ApiKeys],
                         email: FromQuery[str | None] = None,
                         lead_id: FromQuery[str | None] = None) -> Engagement:
    """A person's engagement now (``?email=`` or ``?lead_id=``): per event type the count kept,
    the last time and the rules' windows, and each decayed contribution (count, raw points,
    decayed points, cap). Personal data: the admin token or a key with the ``viewer`` scope."""
    await admin_or_key(request, settings, keys, scope="viewer")
    if email:
        try:
            address = event_from_payload({"email": email, "event": "x"}).email or ""
        except msgspec.ValidationError as exc:
            raise validation_problem(exc, title="Invalid event") from None
        state = await privacy.engagement_of_email(address)
    elif lead_id:
        try:
            state = await privacy.engagement_of_lead(lead_id[:64])
        except UnknownLead:
            raise problem(404, "Lead not found", f"no lead {lead_id!r}",
                          kind="lead-not-found") from None
    else:
        raise problem(400, "Bad request", "pass ?email=... or ?lead_id=...")
    if state is None:
        raise problem(404, "Not found", "no engagement recorded for this person",
                      kind="engagement-not-found")
    ruleset = engagement.rules.current
    now = engagement.now()
    spec = ruleset.engagement
    found = lines(spec, state.activity, now) if spec else ()
    # One source of truth: the person's lead decided now, as a re-score would (rules in the
    # engagement group and the decaying points); without a lead, the decaying points alone.
    scored = await engagement.lead_score(state, now)
    rules = [c for c in scored.contributions if c.group == "engagement"] if scored else []
    wanted = {(e, d) for e, d in ruleset.windows if e in state.activity.types}
    counts, _ = windows(state.activity, wanted, (), now)
    return Engagement(
        lead_id=state.lead, seq=state.seq, at=now,
        half_life=spec.half_life_text if spec else None,
        score=scored.engagement if scored else round(sum(x.final for x in found), 4),
        rules=rules,
        contributions=[Contribution(event=x.event, count=x.count, points=x.points, raw=x.raw,
                                    decayed=x.decayed, cap=x.cap, capped=x.capped,
                                    final=x.final, last_at=x.last_at) for x in found],
        events=[TypeInfo(event=name, count=a.n, last_at=None if a.last is None else
                         dt.datetime.fromtimestamp(a.last / 1000, dt.UTC),
                         windows={f"{d}d": n for (e, d), n in sorted(counts.items())
                                  if e == name})
                for name, a in sorted(state.activity.types.items())])


handlers = [post_events, get_engagement]
