"""API keys: per source, with scopes, stored hashed, rotatable.

A key looks like ``lrk_<43 url-safe characters>`` (256 random bits). Only its SHA-256 is
stored (``router/state/apikeys.py``): with that much entropy a fast hash is as safe as a slow
one, and a lookup stays one HGET. The key is shown once, when it is created or rotated.

Scopes: ``intake`` (leads, sources), ``events`` (posting engagement events), ``viewer`` (reading
a person's engagement, ``GET /v1/engagement``), ``owner`` (a rep's own key for the owner actions
accept / contacted / reject, bound to that rep: it acts for no one else), ``outcomes``
(posting outcomes: ``POST /v1/leads/{id}/outcome``, ``POST /v1/outcomes``), ``admin`` (key
management, erasure, the admin endpoints; implies the others and acts for any rep). A key
belongs to one source (``*`` = any source); a rotation creates a new key with the same source,
scopes and rep and lets the old one live on for a grace period, so senders can switch without a
gap (two valid keys at once).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from typing import Final

from router.services.clock import Clock
from router.state.apikeys import KeyRecord, KeyStore
from router.state.audit import Actor, Recorder
from router.state.store import Store

__all__ = ["SCOPES", "ApiKeys", "KeyProblem", "KeyRecord", "digest", "new_token",
           "token_from_headers"]

SCOPES: Final = ("intake", "events", "viewer", "owner", "outcomes", "admin")
PREFIX: Final = "lrk_"


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_from_headers(headers: Mapping[str, str]) -> str | None:
    """``Authorization: Bearer lrk_...`` or ``X-API-Key: lrk_...``."""
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip().startswith(PREFIX):
        return value.strip()
    key = headers.get("x-api-key", "").strip()
    return key or None


class KeyProblem(Exception):
    """Why a key does not grant the request (401 unknown/expired, 403 wrong scope/source)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class ApiKeys:
    """Every use of the stored keys: create, check, list, rotate, revoke."""

    def __init__(self, store: KeyStore, clock: Clock | None = None,
                 record: Recorder | None = None) -> None:
        self.store = store
        self.clock = clock or Clock()  # the app's: expiry and grace periods are judged by it
        self.record = record  # the audit log (router/services/audit.py); None: not recorded

    @classmethod
    def on(cls, store: Store, clock: Clock | None = None,
           record: Recorder | None = None) -> ApiKeys:
        """The keys kept in ``store`` (one hash, see router/state/apikeys.py)."""
        return cls(KeyStore(store), clock, record)

    async def _audit(self, by: Actor, action: str, record: KeyRecord, **extra: object) -> None:
        if self.record:  # never the key: its id, source and scopes
            await self.record(by, action, f"apikey:{record.id}", {
                "key_id": record.id, "source": record.source, "scopes": record.scopes,
                "rep": record.rep, **extra})

    async def create(self, *, source: str, scopes: list[str], by: Actor, name: str = "",
                     now_ms: int | None = None, rep: str | None = None
                     ) -> tuple[str, KeyRecord]:
        """A new key (audited: ``by``); the key itself is in this answer only."""
        token, record = await self._new(source=source, scopes=scopes, name=name,
                                        now_ms=now_ms, rep=rep)
        await self._audit(by, "apikey.created", record)
        return token, record

    async def _new(self, *, source: str, scopes: list[str], name: str, now_ms: int | None,
                   rep: str | None) -> tuple[str, KeyRecord]:
        token = new_token()
        record = KeyRecord(id="key_" + secrets.token_hex(6), source=source,
                           scopes=sorted(set(scopes)), name=name,
                           created_at=now_ms or self.clock.ms(), prefix=token[:8],
                           rep=rep)
        await self.store.put(digest(token), record)
        return token, record

    async def check(self, token: str | None, *, source: str, scope: str,
                    now_ms: int | None = None, any_source: bool = False) -> KeyRecord:
        """The key's record if it may act on ``source`` with ``scope``; else KeyProblem."""
        if not token:
            raise KeyProblem(401, "send an API key as 'Authorization: Bearer lrk_...' or "
                                  "'X-API-Key: lrk_...'")
        if len(token) > 200 or not token.isprintable():
            raise KeyProblem(401, "that is not an API key")
        record = await self.store.get(digest(token))
        now = now_ms or self.clock.ms()
        if record is None or (record.expires_at is not None and record.expires_at <= now):
            raise KeyProblem(401, "unknown, revoked or expired API key")
        if not any_source and record.source not in ("*", source):
            raise KeyProblem(403, f"this key belongs to source {record.source!r}, not "
                                  f"{source!r}")
        if scope not in record.scopes and "admin" not in record.scopes:
            raise KeyProblem(403, f"this key lacks the {scope!r} scope (it has "
                                  f"{', '.join(record.scopes)})")
        return record

    async def configured(self) -> bool:
        """True once any key exists: then the owner actions need a credential."""
        return await self.store.count() > 0

    async def all(self) -> list[KeyRecord]:
        """Every key's record (never the key itself), oldest first."""
        return sorted((await self.store.all()).values(), key=lambda r: r.created_at)

    async def find(self, key_id: str) -> tuple[str, KeyRecord] | None:
        for dig, record in (await self.store.all()).items():
            if record.id == key_id:
                return dig, record
        return None

    async def rotate(self, key_id: str, *, grace_s: int, by: Actor,
                     now_ms: int | None = None) -> tuple[str, KeyRecord, KeyRecord] | None:
        """New key, same source/scopes; the old one expires after ``grace_s``."""
        found = await self.find(key_id)
        if found is None:
            return None
        dig, old = found
        now = now_ms or self.clock.ms()
        token, new = await self._new(source=old.source, scopes=old.scopes, name=old.name,
                                     now_ms=now, rep=old.rep)
        old.expires_at = min(old.expires_at or now + grace_s * 1000, now + grace_s * 1000)
        old.rotated_to = new.id
        await self.store.put(dig, old)
        await self._audit(by, "apikey.rotated", old, new_key_id=new.id, grace_s=grace_s)
        return token, new, old

    async def revoke(self, key_id: str, *, by: Actor) -> bool:
        found = await self.find(key_id)
        if found is None or not await self.store.delete(found[0]):
            return False
        await self._audit(by, "apikey.revoked", found[1])
        return True
