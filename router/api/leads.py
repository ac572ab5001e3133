"""Lead intake and retrieval: ``POST /v1/leads``, ``POST /v1/leads:batch``, ``GET /v1/leads/{id}``.

The body is read raw and decoded straight into the ``Lead`` Struct (msgspec, with numeric clean
up such as "1,200" → 1200): one decode, field paths in every error, no framework-side copy.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from leadrouter_sdk import Decision, Lead, decode_lead
from litestar import Request, Response, get, post
from litestar.datastructures import Headers
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath
from litestar.plugins.problem_details import ProblemDetailsException

from router.api._body import decode_body, require_json
from router.api.auth import require_intake_key
from router.api.encoded import EncodedResponse
from router.api.errors import problem
from router.api.intake import changed_problem, contact_problem, intake_config
from router.api.openapi import BatchRequest, json_body, problems
from router.intake.policy import missing_contact
from router.services.keys import ApiKeys
from router.services.leads import LeadService
from router.settings import Settings

__all__ = ["handlers"]

_IDEM_MAX = 255
_FORMS = "HTML forms post to /v1/forms/{form_id}"  # the 415's hint


def _idempotency_key(headers: Headers) -> str | None:
    key = headers.get("idempotency-key")
    if key is None:
        return None
    key = key.strip().strip('"')
    if not key or len(key) > _IDEM_MAX or not key.isprintable():
        raise problem(400, "Invalid Idempotency-Key",
                      f"the Idempotency-Key header must be 1 to {_IDEM_MAX} printable "
                      "characters, e.g. a UUID", kind="idempotency-key")
    return key


def _decode(body: bytes, prefix: str = "$") -> Lead:
    return decode_body(body, decode_lead, prefix=prefix, tp=Lead,
                       hint="send one JSON object of lead fields")


async def _route_one(service: LeadService, lead: Lead, body: bytes, key: str | None,
                     retry_after: int, prefix: str = "$") -> tuple[int, Any, dict[str, str]]:
    missing = missing_contact(lead, intake_config(service.rules).leads)
    if missing:
        raise contact_problem(missing, prefix)
    outcome, decision, ref = await service.route(lead, body=body, idempotency_key=key)
    if outcome == "created":
        return 201, decision, {"Location": f"/v1/leads/{ref}"}
    if outcome in ("duplicate", "updated") and decision is not None:
        return 200, decision, {"Location": f"/v1/leads/{ref}"}
    if outcome == "mismatch":
        raise problem(422, "Idempotency key reused",
                      "this Idempotency-Key was already used with a different request body — "
                      "use a new key for a new lead", kind="idempotency-mismatch", lead_id=ref)
    if outcome == "changed":
        raise changed_problem(lead, ref)
    raise problem(409, "Request in progress",
                  "a request with the same Idempotency-Key or external_id is being processed — "
                  "retry shortly", kind="idempotency-in-flight",
                  headers={"Retry-After": str(retry_after)})


@post("/v1/leads", tags=["leads"], status_code=201,
      responses={200: ResponseSpec(Decision, generate_examples=False, description="A repeat "
                                   "(Idempotency-Key or external_id): the first decision; "
                                   "`updated: true`: an external_id update's new decision"),
                 **problems(409, 415)},
      operation_class=json_body(Lead, "The lead's fields; unknown fields are refused."))
async def create_lead(request: Request[Any, Any, Any], leads: NamedDependency[LeadService],
                      keys: NamedDependency[ApiKeys]) -> Response[Decision]:
    """Score and route one lead: 201 with the decision, 200 with ``duplicate: true`` when the
    ``Idempotency-Key`` or ``external_id`` was seen before."""
    # The hot path: each injected dependency costs a few µs per request, so the settings come
    # with the lead service rather than as a third one.
    settings = leads.settings
    headers = request.headers  # built once per request (litestar caches it in the scope)
    require_json(headers, hint=_FORMS)
    await require_intake_key(request, settings, keys)
    key = _idempotency_key(headers)
    body = await request.body()
    lead = _decode(body)
    status, decision, extra = await _route_one(leads, lead, body, key,
                                               settings.retry_after_seconds)
    # EncodedResponse: the same bytes and headers as Response, without litestar's per-response
    # header assembly (router/api/encoded.py).
    response: Response[Decision] = EncodedResponse(decision, status_code=status, headers=extra)
    return response


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    leads: list[msgspec.Raw]


_decode_batch = msgspec.json.Decoder(_Batch).decode
_decode_array = msgspec.json.Decoder(list[msgspec.Raw]).decode


def _batch_items(body: bytes) -> list[msgspec.Raw]:
    """``{"leads": [...]}`` or a bare JSON array: the items, still encoded."""
    return _decode_batch(body).leads if body.lstrip()[:1] == b"{" else _decode_array(body)


@post("/v1/leads:batch", tags=["leads"], status_code=200, responses=problems(415),
      operation_class=json_body(BatchRequest, "Up to LEADROUTER_BATCH_LIMIT leads."))
async def create_leads(request: Request[Any, Any, Any], leads: NamedDependency[LeadService],
                       settings: NamedDependency[Settings],
                       keys: NamedDependency[ApiKeys]) -> dict[str, Any]:
    """Many leads in one request: ``{"leads": [...]}`` (or a JSON array), one result each.

    Items are independent: a bad item gets its own problem (with its index in the path) and the
    others are still routed. With an ``Idempotency-Key`` header, item *i* uses ``KEY:i``.
    """
    headers = request.headers
    require_json(headers, hint=_FORMS)
    await require_intake_key(request, settings, keys)
    key = _idempotency_key(headers)
    body = await request.body()
    items = decode_body(body, _batch_items)
    limit = settings.batch_limit
    if len(items) > limit:
        raise problem(413, "Batch too large", f"{len(items)} leads in one batch; the limit is "
                      f"{limit} — split the batch", kind="batch-too-large", limit=limit)
    async def one(i: int, raw: msgspec.Raw) -> dict[str, Any]:
        item = bytes(raw)
        try:
            lead = _decode(item, prefix=f"$.leads[{i}]")
            status, decision, _ = await _route_one(leads, lead, item,
                                                   f"{key}:{i}" if key else None,
                                                   settings.retry_after_seconds,
                                                   prefix=f"$.leads[{i}]")
            return {"index": i, "status": status, "decision": decision}
        except ProblemDetailsException as exc:  # that item fails; anything else: the request
            resp = exc.to_response(request)
            return {"index": i, "status": resp.status_code, "problem": resp.content}

    results = await asyncio.gather(*(one(i, raw) for i, raw in enumerate(items)))
    return {"results": results,
            "created": sum(1 for r in results if r["status"] == 201),
            "duplicates": sum(1 for r in results
                              if r["status"] == 200 and not r["decision"].updated),
            "updated": sum(1 for r in results if r["status"] == 200 and r["decision"].updated),
            "failed": sum(1 for r in results if r["status"] >= 400)}


@get("/v1/leads/{lead_id:str}", tags=["leads"])
async def get_lead(lead_id: FromPath[str], leads: NamedDependency[LeadService]) -> Decision:
    """The stored decision: score breakdown, status, assignment, SLA state, rules version and
    the history of everything that happened to the lead."""
    if len(lead_id) > 64:
        raise problem(404, "Not found", "no lead with that id")
    decision = await leads.get(lead_id)
    if decision is None:
        raise problem(404, "Not found", f"no lead {lead_id!r} (it may have expired after the "
                      "decision retention period)", kind="lead-not-found")
    return decision


handlers = [create_lead, create_leads, get_lead]
