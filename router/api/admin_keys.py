"""API-key management: ``/v1/admin/keys`` (create, list, rotate, revoke).

The admin token or a key with the ``admin`` scope may manage keys; a new key is shown once, in
the answer that created it (router/services/keys.py keeps only its hash). A key with the
``owner`` scope names the rep it acts for (``rep``); no other key has one.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import Parameter

from router.api._body import decode_json
from router.api.auth import admin_actor, admin_or_key
from router.api.errors import problem
from router.api.openapi import json_body
from router.services.keys import SCOPES, ApiKeys, KeyRecord
from router.settings import Settings

__all__ = ["KeyInfo", "NewKey", "handlers"]

log = logging.getLogger("leadrouter.intake")

_KEY_ID = Annotated[str, Parameter(max_length=63)]


class NewKey(msgspec.Struct, forbid_unknown_fields=True):
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=63,
                                        pattern=r"^(\*|[a-z0-9][a-z0-9_-]*)$")]
    # The enum is published in the schema only: the handler names a wrong scope itself.
    scopes: Annotated[list[Annotated[str, msgspec.Meta(extra_json_schema={"enum": SCOPES})]],
                      msgspec.Meta(min_length=1, max_length=len(SCOPES))]
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    rep: Annotated[str, msgspec.Meta(min_length=1, max_length=100,
                                     pattern=r"^[^\s,]+$")] | None = None


class KeyInfo(msgspec.Struct, omit_defaults=True):
    id: str
    source: str
    scopes: list[str]
    name: str
    created_at: int
    prefix: str
    expires_at: int | None = None
    rotated_to: str | None = None
    rep: str | None = None
    key: str | None = None  # only in the answer that created it


def _info(record: KeyRecord, key: str | None = None) -> KeyInfo:
    return KeyInfo(id=record.id, source=record.source, scopes=record.scopes, name=record.name,
                   created_at=record.created_at, prefix=record.prefix,
                   expires_at=record.expires_at, rotated_to=record.rotated_to,
                   rep=record.rep, key=key)


@post("/v1/admin/keys", tags=["admin"], status_code=201,
      operation_class=json_body(NewKey, "source (a source id or *), scopes (intake, events, "
                                "viewer, owner, admin), name; rep with the owner scope"))
async def create_key(request: Request[Any, Any, Any], settings: NamedDependency[Settings],
                     keys: NamedDependency[ApiKeys]) -> KeyInfo:
    """Create an API key; the key itself is in this answer only (store it now)."""
    by = await admin_actor(request, settings, keys)
    spec = decode_json(await request.body(), NewKey)
    bad = [s for s in spec.scopes if s not in SCOPES]
    if bad:
        raise problem(422, "Invalid key", f"unknown scope {bad[0]!r}; scopes are "
                      f"{', '.join(SCOPES)}", kind="validation",
                      errors=[{"path": "$.scopes", "message": "unknown scope"}])
    if ("owner" in spec.scopes) != (spec.rep is not None):
        detail = ("an 'owner' key acts for one rep: add \"rep\": \"<rep id>\"" if spec.rep is None
                  else "only an 'owner' key names a rep: add the 'owner' scope or drop \"rep\"")
        raise problem(422, "Invalid key", detail, kind="validation",
                      errors=[{"path": "$.rep", "message": detail}])
    token, record = await keys.create(source=spec.source, scopes=spec.scopes, name=spec.name,
                                      rep=spec.rep, by=by)
    log.info("api key created", extra={"key_id": record.id, "source": record.source})
    return _info(record, token)


@get("/v1/admin/keys", tags=["admin"])
async def list_keys(request: Request[Any, Any, Any], settings: NamedDependency[Settings],
                    keys: NamedDependency[ApiKeys]) -> list[KeyInfo]:
    """Every key's id, source, scopes and expiry (never the key)."""
    await admin_or_key(request, settings, keys)
    return [_info(r) for r in await keys.all()]


@post("/v1/admin/keys/{key_id:str}/rotate", tags=["admin"], status_code=201)
async def rotate_key(request: Request[Any, Any, Any], key_id: _KEY_ID,
                     settings: NamedDependency[Settings], keys: NamedDependency[ApiKeys],
                     grace: Annotated[int, Parameter(ge=0, le=30 * 86400)] = 86400) -> KeyInfo:
    """A new key with the same source and scopes; the old one keeps working for ``grace``
    seconds (default one day), so senders can switch without a gap."""
    by = await admin_actor(request, settings, keys)
    rotated = await keys.rotate(key_id, grace_s=grace, by=by)
    if rotated is None:
        raise problem(404, "Not found", f"no API key {key_id!r}", kind="key-not-found")
    token, new, _ = rotated
    log.info("api key rotated", extra={"key_id": key_id, "new_key_id": new.id})
    return _info(new, token)


@delete("/v1/admin/keys/{key_id:str}", tags=["admin"], status_code=204)
async def revoke_key(request: Request[Any, Any, Any], key_id: _KEY_ID,
                     settings: NamedDependency[Settings], keys: NamedDependency[ApiKeys]) -> None:
    """Revoke a key at once."""
    by = await admin_actor(request, settings, keys)
    if not await keys.revoke(key_id, by=by):
        raise problem(404, "Not found", f"no API key {key_id!r}", kind="key-not-found")
    log.info("api key revoked", extra={"key_id": key_id})


handlers = [create_key, list_keys, rotate_key, revoke_key]
