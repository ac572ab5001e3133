"""Account ownership by company domain, used by lead-to-account matching (``account_owner``)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, delete, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath

from router.api._body import decode_json
from router.api.auth import admin_guard, guarded_actor
from router.api.errors import problem
from router.api.openapi import json_body, problems
from router.engine.functions import domain_of
from router.services.directory import DirectoryService, UnknownRep

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
async def put_account(request: Request[Any, Any, Any], domain: FromPath[str],
                      directory: NamedDependency[DirectoryService]) -> dict[str, str]:
    """Make ``owner`` the owner of the account ``domain``."""
    body = decode_json(await request.body(), AccountOwner, title="Invalid account")
    try:
        directory.check_rep(body.owner)
    except UnknownRep:
        raise problem(422, "Unknown rep", f"$.owner: {body.owner!r} is not a rep in "
                      "rules/reps.yaml", kind="validation",
                      errors=[{"path": "$.owner", "message": "unknown rep"}]) from None
    name = _domain(domain)
    await directory.set_account_owner(name, body.owner, by=guarded_actor(request))
    return {"domain": name, "owner": body.owner}


def _not_found(name: str) -> Exception:
    return problem(404, "Not found", f"no owner recorded for {name}", kind="account-not-found")


@get("/v1/accounts/{domain:str}", tags=["accounts"], guards=[admin_guard],
     responses=problems(422))
async def get_account(domain: FromPath[str],
                      directory: NamedDependency[DirectoryService]) -> dict[str, str]:
    name = _domain(domain)
    owner = await directory.account_owner(name)
    if owner is None:
        raise _not_found(name)
    return {"domain": name, "owner": owner}


@delete("/v1/accounts/{domain:str}", tags=["accounts"], guards=[admin_guard], status_code=204,
        responses=problems(422))
async def delete_account(request: Request[Any, Any, Any], domain: FromPath[str],
                         directory: NamedDependency[DirectoryService]) -> Response[None]:
    name = _domain(domain)
    if not await directory.delete_account(name, by=guarded_actor(request)):
        raise _not_found(name)
    return Response(None, status_code=204)


handlers = [put_account, get_account, delete_account]
