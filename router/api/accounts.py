"""Account ownership by company domain, used by lead-to-account matching (``account_owner``)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, delete, get, put
from litestar.params import FromPath

from router.api.auth import admin_guard
from router.api.errors import DECODE_ERRORS, problem, validation_problem
from router.api.openapi import json_body
from router.engine.functions import domain_of

__all__ = ["AccountOwner", "handlers"]


class AccountOwner(msgspec.Struct, forbid_unknown_fields=True):
    """The rep who owns every lead from this company domain."""

    owner: str


def _domain(raw: str) -> str:
    domain = domain_of(raw)
    if not domain or "." not in domain or len(domain) > 253:
        raise problem(422, "Invalid domain", f"{raw!r} is not a company domain — use e.g. "
                      "acme.com", kind="validation",
                      errors=[{"path": "domain", "message": "not a domain"}])
    return domain


@put("/v1/accounts/{domain:str}", tags=["accounts"], guards=[admin_guard],
     operation_class=json_body(AccountOwner, "The owning rep."))
async def put_account(request: Request[Any, Any, Any], domain: FromPath[str]) -> dict[str, str]:
    """Make ``owner`` the owner of the account ``domain``."""
    ctx = request.app.state.ctx
    try:
        body = msgspec.json.decode(await request.body(), type=AccountOwner)
    except msgspec.ValidationError as exc:
        raise validation_problem(exc, title="Invalid account") from None
    except DECODE_ERRORS as exc:
        raise problem(400, "Malformed JSON", f"the body is not valid JSON: {exc}") from None
    if body.owner not in ctx.rules.current.reps:
        raise problem(422, "Unknown rep", f"$.owner: {body.owner!r} is not a rep in "
                      "rules/reps.yaml", kind="validation",
                      errors=[{"path": "$.owner", "message": "unknown rep"}])
    name = _domain(domain)
    await ctx.store.put_account(name, body.owner)
    return {"domain": name, "owner": body.owner}


@get("/v1/accounts/{domain:str}", tags=["accounts"], guards=[admin_guard])
async def get_account(request: Request[Any, Any, Any], domain: FromPath[str]) -> dict[str, str]:
    name = _domain(domain)
    owner = await request.app.state.ctx.store.get_account(name)
    if owner is None:
        raise problem(404, "Not found", f"no owner recorded for {name}", kind="account-not-found")
    return {"domain": name, "owner": owner}


@delete("/v1/accounts/{domain:str}", tags=["accounts"], guards=[admin_guard], status_code=204)
async def delete_account(request: Request[Any, Any, Any], domain: FromPath[str]) -> Response[None]:
    name = _domain(domain)
    if not await request.app.state.ctx.store.delete_account(name):
        raise problem(404, "Not found", f"no owner recorded for {name}", kind="account-not-found")
    return Response(None, status_code=204)


handlers = [put_account, get_account, delete_account]
