"""Machine sources: ``POST /v1/sources/{source_id}`` (HubSpot, Segment, generic JSON) and the
API-key admin endpoints (``/v1/admin/keys``). Shared intake plumbing lives here too.

Order of checks for a source request: known source → credentials (signature or API key,
constant-time) → rate limit → replay protection (webhook id) → decode → adapter → route each
item. Every refusal is an RFC 9457 problem naming the field; nothing a sender sends is a 500.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
from typing import Annotated, Any

import msgspec
from leadrouter_sdk import Lead
from litestar import Request, Response, delete, get, post
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody
from litestar.params import Parameter
from litestar.plugins.problem_details import ProblemDetailsException

from router.api.errors import problem
from router.intake.config import EMPTY, IntakeConfig, SourceConfig, parse_rate
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
from router.services.keys import SCOPES, ApiKeys, KeyProblem, token_from_headers
from router.services.leads import LeadService
from router.services.ratelimit import enforce
from router.state.apikeys import KeyRecord, KeyStore
from router.state.errors import StateUnavailable
from router.state.ratelimit import RateLimiter
from router.state.replay import ReplayGuard

__all__ = ["admin_or_key", "handlers", "intake_config", "intake_problem", "limits_of",
           "require_intake_key", "route_lead"]

log = logging.getLogger("leadrouter.intake")
# What msgspec raises for bodies it cannot read: malformed JSON, bad UTF-8, too deep nesting.
DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
_SOURCE_ID = Annotated[str, Parameter(max_length=63)]


# -- shared plumbing ------------------------------------------------------------------------


def intake_problem(exc: IntakeError) -> ProblemDetailsException:
    extra: dict[str, Any] = {}
    if exc.field:
        extra["errors"] = [{"path": exc.field, "message": exc.detail}]
        extra["field"] = exc.field
    return problem(exc.status, exc.title, exc.detail, kind=exc.kind,
                   headers=exc.headers or None, **extra)


def intake_config(request: Request[Any, Any, Any]) -> IntakeConfig:
    intake = request.app.state.ctx.rules.current.intake
    return intake if isinstance(intake, IntakeConfig) else EMPTY


def limits_of(request: Request[Any, Any, Any]) -> Limits:
    s = request.app.state.ctx.settings
    return Limits(max_fields=s.max_fields, max_value_chars=s.max_field_chars)


def _service(request: Request[Any, Any, Any]) -> LeadService:
    service: LeadService | None = request.app.state.ctx.leads
    if service is None:
        raise StateUnavailable("the state store is not connected yet")
    return service


async def route_lead(request: Request[Any, Any, Any], lead: Lead, *, body: bytes, source: str,
                     key: str | None, spam: str | None = None) -> tuple[int, str, Any]:
    """Route one lead: (201 created | 200 duplicate, lead id, decision)."""
    outcome, decision, ref = await _service(request).route(
        lead, body=body, source=source, idempotency_key=key, spam=spam)
    if outcome == "created":
        return 201, ref, decision
    if outcome == "duplicate" and decision is not None:
        return 200, ref, decision
    if outcome == "mismatch":
        raise IntakeError(422, "Idempotency key reused", "this idempotency key was already used "
                          "with a different body — use a new key for a new lead",
                          kind="idempotency-mismatch")
    retry = str(request.app.state.ctx.settings.retry_after_seconds)
    raise IntakeError(409, "Request in progress", "the same lead is being processed — retry "
                      "shortly", kind="idempotency-in-flight", headers={"Retry-After": retry})


def _keys(request: Request[Any, Any, Any]) -> ApiKeys:
    return ApiKeys(KeyStore(request.app.state.ctx.store))


async def admin_or_key(request: Request[Any, Any, Any], scope: str = "admin") -> str:
    """The admin token, or an API key with ``scope`` (any source): who is acting."""
    settings = request.app.state.ctx.settings
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    token = settings.admin_token
    if token and scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()):
        return "admin-token"
    api_key = token_from_headers(request.headers)
    if api_key is None:
        raise problem(401, "Unauthorized", "send the admin token or an API key with the "
                      f"{scope!r} scope as 'Authorization: Bearer ...'",
                      headers={"WWW-Authenticate": 'Bearer realm="leadrouter-admin"'})
    try:
        record = await _keys(request).check(api_key, source="*", scope=scope,
                                            any_source=True)
    except KeyProblem as exc:
        raise problem(exc.status, "Unauthorized" if exc.status == 401 else "Forbidden",
                      exc.detail, kind="api-key") from None
    return record.id


async def require_intake_key(request: Request[Any, Any, Any], ctx: Any = None) -> None:
    """``POST /v1/leads``: with ``LEADROUTER_REQUIRE_API_KEY=true``, an ``intake`` key for the
    source ``api`` (or ``*``) is required; off by default. ``ctx``: the app's context if the
    caller has it already."""
    if not (ctx or request.app.state.ctx).settings.require_api_key:
        return
    try:
        await _keys(request).check(token_from_headers(request.headers), source="api",
                                   scope="intake")
    except KeyProblem as exc:
        raise problem(exc.status, "Unauthorized" if exc.status == 401 else "Forbidden",
                      exc.detail, kind="api-key",
                      headers={"WWW-Authenticate": 'Bearer realm="leadrouter"'}) from None


# -- sources --------------------------------------------------------------------------------


def _secrets(source: SourceConfig) -> list[str]:
    found = split_secrets(os.environ.get(source.secret_env or "", ""))
    if not found:
        log.warning("source has no secret configured",
                    extra={"source": source.id, "variable": source.secret_env})
        raise IntakeError(401, "Unauthorized", f"source {source.id!r} has no signing secret "
                          "configured on the server", kind="source-not-configured")
    return found


def _public_url(request: Request[Any, Any, Any]) -> str:
    base: str | None = request.app.state.ctx.settings.public_url
    url = str(request.url)
    if base:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return base.rstrip("/") + path
    return url


class _Auth(msgspec.Struct):
    method: str
    replay_id: str | None
    bucket: str


async def _authenticate(request: Request[Any, Any, Any], source: SourceConfig,
                        body: bytes) -> _Auth:
    h = request.headers
    now = request.app.state.ctx.now().timestamp()
    for method in source.auth:
        if method == "hubspot_v3" and "x-hubspot-signature-v3" in h:
            sig = verify_hubspot_v3(_secrets(source), method=request.method,
                                    uri=_public_url(request), body=body,
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
                record = await _keys(request).check(token_from_headers(h), source=source.id,
                                                    scope="intake")
            except KeyProblem as exc:
                raise IntakeError(exc.status, "Unauthorized" if exc.status == 401
                                  else "Forbidden", exc.detail, kind="api-key") from None
            idem = h.get("idempotency-key")
            replay = "ik:" + idem.strip()[:255] if idem and idem.strip() else None
            return _Auth(method, replay, f"key:{record.id}")
    expected = {"hubspot_v3": "X-HubSpot-Signature-v3", "standard_webhooks":
                "webhook-signature (Standard Webhooks)", "segment_signature": "X-Signature",
                "api_key": "an API key (Authorization: Bearer lrk_...)"}
    raise IntakeError(401, "Unauthorized", f"source {source.id!r} needs "
                      + " or ".join(expected[m] for m in source.auth), kind="missing-signature",
                      headers={"WWW-Authenticate": 'Bearer realm="leadrouter-sources"'})


def _items(source: SourceConfig, doc: Any, body: bytes, limits: Limits) -> list[Item]:
    if source.type == "hubspot":
        return hubspot_items(source, doc, body, limits)
    if source.type == "segment":
        return segment_items(source, doc, limits)
    return json_items(source, doc, limits)


async def _record_event(request: Request[Any, Any, Any], event: dict[str, Any]) -> dict[str, Any]:
    # Engagement events are stored by the engagement service (router/services/engagement.py) when
    # this
    # build has it; the adapter already produced the POST /v1/events shape.
    engagement = getattr(request.app.state.ctx, "engagement", None)
    record = getattr(engagement, "record_from_source", None)
    if record is None:
        return {"status": 202, "skipped": "engagement events are not stored by this build"}
    try:
        result = await record(event)
    except msgspec.ValidationError as exc:
        text = str(exc)
        field = text.rsplit("`", 2)[-2] if text.endswith("`") else None
        raise IntakeError(422, "Invalid event", text, field=field) from None
    except LookupError as exc:  # the event names a lead that does not exist (any more)
        return {"status": 204, "skipped": str(exc)[:200]}
    return {"status": 202, "event": result}


async def _process(request: Request[Any, Any, Any], source: SourceConfig, items: list[Item],
                   replay_id: str | None) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    single = len(items) == 1
    for i, item in enumerate(items):
        entry: dict[str, Any] = {"item": item.label}
        try:
            if item.error is not None:
                raise item.error
            if item.skipped is not None:
                entry.update(status=204, skipped=item.skipped)
            elif item.event is not None:
                entry.update(await _record_event(request, item.event))
            elif item.lead is not None:
                key = item.key
                if key is None and replay_id is not None:
                    key = f"{replay_id}:{i}"[:255]
                status, lead_id, _ = await route_lead(request, item.lead, body=item.body,
                                                      source=source.source, key=key)
                entry.update(status=status, lead_id=lead_id)
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
            "created": sum(1 for r in results if r.get("status") == 201),
            "duplicates": sum(1 for r in results if r.get("status") == 200),
            "accepted_events": sum(1 for r in results if r.get("status") == 202),
            "skipped": sum(1 for r in results if r.get("status") == 204),
            "failed": sum(1 for r in results if r.get("status", 0) >= 400)}


def _source_op() -> type[Operation]:
    from dataclasses import dataclass

    @dataclass
    class _Op(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                required=True, description="HubSpot / Segment / generic JSON payload",
                content={"application/json": OpenAPIMediaType(schema={})})  # type: ignore[arg-type]

    return _Op


@post("/v1/sources/{source_id:str}", tags=["sources"], status_code=200,
      operation_class=_source_op())
async def post_source(request: Request[Any, Any, Any], source_id: _SOURCE_ID) -> Response[Any]:
    """A machine source's delivery (see docs/intake.md): HubSpot, Segment or generic JSON,
    authenticated by signature or API key; one result per lead, event or skipped item."""
    try:
        return await _post_source(request, source_id)
    except IntakeError as exc:
        raise intake_problem(exc) from None


async def _post_source(request: Request[Any, Any, Any], source_id: str) -> Response[Any]:
    source = intake_config(request).sources.get(source_id)
    if source is None:
        raise IntakeError(404, "Unknown source", f"no source {source_id[:64]!r} in the intake "
                          "configuration (rules/intake.yaml `sources:`)", kind="unknown-source")
    ctype = request.headers.get("content-type", "")
    if ctype.split(";", 1)[0].strip().lower() not in ("application/json", ""):
        raise IntakeError(415, "Unsupported media type", f"sources take JSON (got "
                          f"{ctype[:80]!r})", field="$", kind="unsupported-media-type")
    body = await request.body()
    ctx = request.app.state.ctx
    auth = await _authenticate(request, source, body)
    spec = source.rate_limit or parse_rate(ctx.settings.source_rate_limit)
    headers = await enforce(RateLimiter(ctx.store), auth.bucket, spec)
    guard = ReplayGuard(ctx.store)
    fp = hashlib.sha256(body).hexdigest()
    ttl = 3 * source.tolerance
    if auth.replay_id is not None:
        seen = await guard.claim(source.id, auth.replay_id, fp, ttl)
        if seen is not None:
            return _replayed(seen, fp, headers, ctx.settings.retry_after_seconds)
    try:
        try:
            doc = msgspec.json.decode(body)
        except DECODE_ERRORS as exc:
            raise IntakeError(400, "Malformed JSON", f"the body is not valid JSON: {exc}",
                              field="$", kind="malformed-json") from None
        results = await _process(request, source, _items(source, doc, body, limits_of(request)),
                                 auth.replay_id)
    except BaseException:
        if auth.replay_id is not None:  # let the sender's retry through
            with contextlib.suppress(StateUnavailable):
                await guard.release(source.id, auth.replay_id)
        raise
    summary = _summary(results)
    if auth.replay_id is not None:
        compact = [{k: r[k] for k in ("item", "status", "lead_id") if k in r} for r in results]
        await guard.finish(source.id, auth.replay_id, fp,
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


# -- API keys -------------------------------------------------------------------------------


class NewKey(msgspec.Struct, forbid_unknown_fields=True):
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=63,
                                        pattern=r"^(\*|[a-z0-9][a-z0-9_-]*)$")]
    scopes: Annotated[list[str], msgspec.Meta(min_length=1, max_length=3)]
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""


class KeyInfo(msgspec.Struct, omit_defaults=True):
    id: str
    source: str
    scopes: list[str]
    name: str
    created_at: int
    prefix: str
    expires_at: int | None = None
    rotated_to: str | None = None
    key: str | None = None  # only in the answer that created it


def _info(record: KeyRecord, key: str | None = None) -> KeyInfo:
    return KeyInfo(id=record.id, source=record.source, scopes=record.scopes, name=record.name,
                   created_at=record.created_at, prefix=record.prefix,
                   expires_at=record.expires_at, rotated_to=record.rotated_to, key=key)


def _new_key_op() -> type[Operation]:
    from router.api.openapi import json_body

    return json_body(NewKey, "source (a source id or *), scopes (intake, events, admin), name")


@post("/v1/admin/keys", tags=["admin"], status_code=201, operation_class=_new_key_op())
async def create_key(request: Request[Any, Any, Any]) -> KeyInfo:
    """Create an API key; the key itself is in this answer only (store it now)."""
    await admin_or_key(request)
    try:
        spec = msgspec.json.decode(await request.body(), type=NewKey)
    except msgspec.ValidationError as exc:
        from router.api.errors import validation_problem

        raise validation_problem(exc) from None
    except DECODE_ERRORS as exc:
        raise problem(400, "Malformed JSON", f"the body is not valid JSON: {exc}") from None
    bad = [s for s in spec.scopes if s not in SCOPES]
    if bad:
        raise problem(422, "Invalid key", f"unknown scope {bad[0]!r}; scopes are "
                      f"{', '.join(SCOPES)}", kind="validation",
                      errors=[{"path": "$.scopes", "message": "unknown scope"}])
    token, record = await _keys(request).create(source=spec.source, scopes=spec.scopes,
                                                name=spec.name)
    log.info("api key created", extra={"key_id": record.id, "source": record.source})
    return _info(record, token)


@get("/v1/admin/keys", tags=["admin"])
async def list_keys(request: Request[Any, Any, Any]) -> list[KeyInfo]:
    """Every key's id, source, scopes and expiry (never the key)."""
    await admin_or_key(request)
    records = await _keys(request).store.all()
    return sorted((_info(r) for r in records.values()), key=lambda k: k.created_at)


@post("/v1/admin/keys/{key_id:str}/rotate", tags=["admin"], status_code=201)
async def rotate_key(request: Request[Any, Any, Any], key_id: _SOURCE_ID,
                     grace: Annotated[int, Parameter(ge=0, le=30 * 86400)] = 86400) -> KeyInfo:
    """A new key with the same source and scopes; the old one keeps working for ``grace``
    seconds (default one day), so senders can switch without a gap."""
    await admin_or_key(request)
    rotated = await _keys(request).rotate(key_id, grace_s=grace)
    if rotated is None:
        raise problem(404, "Not found", f"no API key {key_id!r}", kind="key-not-found")
    token, new, _ = rotated
    log.info("api key rotated", extra={"key_id": key_id, "new_key_id": new.id})
    return _info(new, token)


@delete("/v1/admin/keys/{key_id:str}", tags=["admin"], status_code=204)
async def revoke_key(request: Request[Any, Any, Any], key_id: _SOURCE_ID) -> None:
    """Revoke a key at once."""
    await admin_or_key(request)
    if not await _keys(request).revoke(key_id):
        raise problem(404, "Not found", f"no API key {key_id!r}", kind="key-not-found")
    log.info("api key revoked", extra={"key_id": key_id})


handlers = [post_source, create_key, list_keys, rotate_key, revoke_key]
