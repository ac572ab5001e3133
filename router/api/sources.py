"""Machine sources: ``POST /v1/sources/{source_id}`` (HubSpot, Segment, generic JSON).

Order of checks for a source request: known source → credentials (signature or API key,
constant-time) → rate limit → replay protection (webhook id) → decode → adapter → route each
item. Every refusal is an RFC 9457 problem naming the field; nothing a sender sends is a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody
from litestar.params import Parameter

from router.api._body import decode_body, require_json
from router.api.auth import key_problem
from router.api.intake import intake_config, intake_problem, limits_of, route_lead
from router.api.openapi import problems
from router.intake.config import SourceConfig, parse_rate
from router.intake.generic import json_items
from router.intake.hubspot import hubspot_items
from router.intake.items import Item
from router.intake.mapping import IntakeError, Limits
from router.intake.segment import segment_items
from router.intake.signatures import (
    split_secrets,
    verify_hubspot_v3,
    verify_segment,
    verify_standard,
)
from router.services.clock import Clock
from router.services.engagement import EngagementService
from router.services.keys import ApiKeys, KeyProblem, token_from_headers
from router.services.leads import LeadService
from router.services.outcomes import OutcomeError, OutcomeIn, OutcomeService
from router.services.ratelimit import RateLimits, WebhookReplays
from router.services.rules import RulesManager
from router.settings import Settings

__all__ = ["handlers"]

log = logging.getLogger("leadrouter.intake")
_SOURCE_ID = Annotated[str, Parameter(max_length=63)]


def _secrets(source: SourceConfig) -> list[str]:
    found = split_secrets(os.environ.get(source.secret_env or "", ""))
    if not found:
        log.warning("source has no secret configured",
                    extra={"source": source.id, "variable": source.secret_env})
        raise IntakeError(401, "Unauthorized", f"source {source.id!r} has no signing secret "
                          "configured on the server", kind="source-not-configured")
    return found


def _public_url(request: Request[Any, Any, Any], base: str | None) -> str:
    url = str(request.url)
    if base:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return base.rstrip("/") + path
    return url


class _Auth(msgspec.Struct):
    method: str
    replay_id: str | None
    bucket: str


_EXPECTED = {"hubspot_v3": "X-HubSpot-Signature-v3", "standard_webhooks":
             "webhook-signature (Standard Webhooks)", "segment_signature": "X-Signature",
             "api_key": "an API key (Authorization: Bearer lrk_...)"}


async def _authenticate(request: Request[Any, Any, Any], source: SourceConfig, body: bytes,
                        *, keys: ApiKeys, now: float, public_url: str | None) -> _Auth:
    h = request.headers
    for method in source.auth:
        if method == "hubspot_v3" and "x-hubspot-signature-v3" in h:
            sig = verify_hubspot_v3(_secrets(source), method=request.method,
                                    uri=_public_url(request, public_url), body=body,
                                    timestamp=h.get("x-hubspot-request-timestamp"),
                                    signature=h.get("x-hubspot-signature-v3"), now=now,
                                    tolerance=source.tolerance)
            return _Auth(method, "hs:" + hashlib.sha256(sig.encode()).hexdigest(),
                         f"source:{source.id}")
        if method == "standard_webhooks" and "webhook-signature" in h:
            msg_id = verify_standard(_secrets(source), msg_id=h.get("webhook-id"),
                                     timestamp=h.get("webhook-timestamp"),
                                     signature=h.get("webhook-signature"), body=body, now=now,
                                     tolerance=source.tolerance)
            return _Auth(method, "sw:" + msg_id, f"source:{source.id}")
        if method == "segment_signature" and "x-signature" in h:
            sig = verify_segment(_secrets(source), body=body, signature=h.get("x-signature"))
            return _Auth(method, "sg:" + sig, f"source:{source.id}")
        if method == "api_key" and token_from_headers(h) is not None:
            try:
                record = await keys.check(token_from_headers(h), source=source.id,
                                          scope="intake")
            except KeyProblem as exc:
                raise key_problem(exc) from None
            idem = h.get("idempotency-key")
            replay = "ik:" + idem.strip()[:255] if idem and idem.strip() else None
            return _Auth(method, replay, f"key:{record.id}")
    raise IntakeError(401, "Unauthorized", f"source {source.id!r} needs "
                      + " or ".join(_EXPECTED[m] for m in source.auth), kind="missing-signature",
                      headers={"WWW-Authenticate": 'Bearer realm="leadrouter-sources"'})


def _items(source: SourceConfig, doc: Any, body: bytes, limits: Limits) -> list[Item]:
    if source.type == "hubspot":
        return hubspot_items(source, doc, body, limits)
    if source.type == "segment":
        return segment_items(source, doc, limits)
    return json_items(source, doc, limits)


@dataclass(frozen=True)
class _Router:
    """Where a delivery's items go: leads to the lead service, events to engagement."""

    leads: LeadService
    engagement: EngagementService
    retry_after: int
    outcomes: OutcomeService | None = None

    async def outcome(self, body: dict[str, Any]) -> dict[str, Any]:
        """An outcome item: recorded as ``POST /v1/outcomes`` would (201 new stage, 200 a
        repeat; 404 / 422 as problems)."""
        if self.outcomes is None:  # pragma: no cover (always wired by post_source)
            raise IntakeError(503, "Unavailable", "outcomes are not available here")
        try:
            reply, new = await self.outcomes.record(None, msgspec.convert(body, OutcomeIn))
        except msgspec.ValidationError as exc:
            raise IntakeError(422, "Invalid outcome", f"{exc} — check the source's "
                              "outcomes.fields mapping", field="$") from None
        except OutcomeError as exc:
            raise IntakeError(exc.status, exc.title, exc.detail, field=exc.field,
                              kind=exc.kind) from None
        return {"status": 201 if new else 200, "lead_id": reply.lead_id,
                "outcome": reply.status, "stage": reply.stage}

    async def event(self, event: dict[str, Any]) -> dict[str, Any]:
        # The adapter already produced the POST /v1/events shape.
        try:
            result = await self.engagement.record_from_source(event)
        except msgspec.ValidationError as exc:
            text = str(exc)
            field = text.rsplit("`", 2)[-2] if text.endswith("`") else None
            raise IntakeError(422, "Invalid event", text, field=field) from None
        except LookupError as exc:  # the event names a lead that does not exist (any more)
            return {"status": 204, "skipped": str(exc)[:200]}
        return {"status": 202, "event": result}

    async def item(self, i: int, item: Item, source: SourceConfig,
                   replay_id: str | None) -> dict[str, Any]:
        if item.error is not None:
            raise item.error
        if item.skipped is not None:
            return {"status": 204, "skipped": item.skipped}
        if item.event is not None:
            return await self.event(item.event)
        if item.outcome is not None:
            return await self.outcome(item.outcome)
        if item.lead is None:
            return {}
        key = item.key
        if key is None and replay_id is not None:
            key = f"{replay_id}:{i}"[:255]
        status, lead_id, decision = await route_lead(self.leads, item.lead, body=item.body,
                                                     source=source.source, key=key,
                                                     retry_after=self.retry_after)
        if decision is not None and decision.updated:  # external_id_repeat: update
            return {"status": status, "lead_id": lead_id, "updated": True}
        return {"status": status, "lead_id": lead_id}

    async def all(self, source: SourceConfig, items: list[Item],
                  replay_id: str | None) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        single = len(items) == 1
        for i, item in enumerate(items):
            entry: dict[str, Any] = {"item": item.label}
            try:
                entry.update(await self.item(i, item, source, replay_id))
            except IntakeError as exc:
                if single:
                    raise
                entry.update(status=exc.status, problem={
                    "type": f"https://leadrouter.dev/problems/{exc.kind}", "title": exc.title,
                    "detail": exc.detail, "field": exc.field})
            results.append(entry)
        return results


def _summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"results": results,
            "created": sum(1 for r in results if r.get("status") == 201
                           and "outcome" not in r),
            "duplicates": sum(1 for r in results if r.get("status") == 200
                              and not r.get("updated") and "outcome" not in r),
            "outcomes": sum(1 for r in results if "outcome" in r),
            "updated": sum(1 for r in results if r.get("updated")),
            "accepted_events": sum(1 for r in results if r.get("status") == 202),
            "skipped": sum(1 for r in results if r.get("status") == 204),
            "failed": sum(1 for r in results if r.get("status", 0) >= 400)}


@dataclass
class _SourceOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True, description="HubSpot / Segment / generic JSON payload",
            content={"application/json": OpenAPIMediaType(schema={})})  # type: ignore[arg-type]


@post("/v1/sources/{source_id:str}", tags=["sources"], status_code=200,
      operation_class=_SourceOperation, responses=problems(409, 415))
async def post_source(request: Request[Any, Any, Any], source_id: _SOURCE_ID,
                      rules: NamedDependency[RulesManager], settings: NamedDependency[Settings],
                      clock: NamedDependency[Clock], keys: NamedDependency[ApiKeys],
                      rate_limits: NamedDependency[RateLimits],
                      replays: NamedDependency[WebhookReplays], leads: NamedDependency[LeadService],
                      engagement: NamedDependency[EngagementService],
                      outcomes: NamedDependency[OutcomeService]) -> Response[Any]:
    """A machine source's delivery (see docs/intake.md): HubSpot, Segment or generic JSON,
    authenticated by signature or API key; one result per lead, event or skipped item."""
    try:
        source = _source(request, intake_config(rules).sources.get(source_id), source_id)
        body = await request.body()
        auth = await _authenticate(request, source, body, keys=keys,
                                   now=clock().timestamp(), public_url=settings.public_url)
        spec = source.rate_limit or parse_rate(settings.source_rate_limit)
        headers = await rate_limits.enforce(auth.bucket, spec)
        router = _Router(leads, engagement, settings.retry_after_seconds, outcomes)
        return await _deliver(source, body, auth, headers, replays, router,
                              limits_of(settings))
    except IntakeError as exc:
        raise intake_problem(exc) from None


def _source(request: Request[Any, Any, Any], source: SourceConfig | None,
            source_id: str) -> SourceConfig:
    """The configured source, if the request may be for it (JSON or no content type)."""
    if source is None:
        raise IntakeError(404, "Unknown source", f"no source {source_id[:64]!r} in the intake "
                          "configuration (rules/intake.yaml `sources:`)", kind="unknown-source")
    require_json(request.headers, refuse=_not_json)
    return source


def _not_json(ctype: str) -> IntakeError:
    return IntakeError(415, "Unsupported media type", f"sources take JSON (got {ctype[:80]!r})",
                       field="$", kind="unsupported-media-type")


async def _deliver(source: SourceConfig, body: bytes, auth: _Auth, headers: dict[str, str],
                   replays: WebhookReplays, router: _Router, limits: Limits) -> Response[Any]:
    """Process the delivery once per webhook id; a repeat gets the first one's outcome."""
    fp = hashlib.sha256(body).hexdigest()
    ttl = 3 * source.tolerance
    if auth.replay_id is not None:
        seen = await replays.claim(source.id, auth.replay_id, fp, ttl)
        if seen is not None:
            return _replayed(seen, fp, headers, router.retry_after)
    try:
        doc = decode_body(body, msgspec.json.decode, field="$")
        results = await router.all(source, _items(source, doc, body, limits), auth.replay_id)
    except BaseException:
        if auth.replay_id is not None:  # let the sender's retry through
            await replays.release(source.id, auth.replay_id)
        raise
    summary = _summary(results)
    if auth.replay_id is not None:
        compact = [{k: r[k] for k in ("item", "status", "lead_id") if k in r} for r in results]
        await replays.finish(source.id, auth.replay_id, fp,
                             msgspec.json.encode(compact).decode(), ttl)
    status = 201 if len(results) == 1 and summary["created"] == 1 else 200
    return Response(summary, status_code=status, headers=headers)


def _replayed(seen: str, fp: str, headers: dict[str, str], retry: int) -> Response[Any]:
    state, _, rest = seen.partition("|")
    old_fp, _, outcome = rest.partition("|")
    if not hmac.compare_digest(old_fp, fp):
        raise IntakeError(409, "Webhook id reused", "this webhook id was already delivered "
                          "with a different body — a replay or a sender bug; nothing was done",
                          kind="webhook-replayed", headers=headers)
    if state == "F":
        raise IntakeError(409, "Delivery in progress", "this webhook id is being processed — "
                          "retry shortly", kind="webhook-in-flight",
                          headers={**headers, "Retry-After": str(retry)})
    try:
        results = msgspec.json.decode(outcome) if outcome else []
    except msgspec.DecodeError:
        results = []
    body = {**_summary([{**r, "status": 200 if r.get("status") == 201 else r.get("status")}
                        for r in results if isinstance(r, dict)]), "replayed": True}
    return Response(body, status_code=200, headers=headers)


handlers = [post_source]
