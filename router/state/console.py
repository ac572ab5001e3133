"""Console sessions in Redis: one string per session, named by the SHA-256 of its cookie.

The browser holds only a random session id (``lr_session``, HttpOnly); what it stands for —
who signed in (the admin token or an API key's id), with which role, the CSRF token of its
forms — is kept here, so a cookie can never claim an identity, and signing out (or the TTL)
ends the session for every worker at once. Only the id's hash names the key: a read of the
database does not give anyone a usable cookie.
"""

from __future__ import annotations

import msgspec

from router.state.errors import translate_errors
from router.state.store import Store

__all__ = ["SessionRecord", "SessionStore"]


class SessionRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    role: str  # "admin" (may change things) or "viewer" (reads only)
    who: str  # "admin-token" or the API key's id: what the audit log names
    name: str = ""  # the key's name, shown in the console's header
    csrf: str  # the token every form post of this session must carry
    created_at: int  # ms
    expires_at: int  # ms
    key_digest: str | None = None  # sha256 of the API key: its record is checked per request
    token_digest: str | None = None  # sha256 of the admin token it signed in with


_decode = msgspec.json.Decoder(SessionRecord).decode
_encode = msgspec.json.Encoder().encode


class SessionStore:
    """Put, read and end console sessions (``ui:session:<sha256>``, TTL = the session's life)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def put(self, digest: str, record: SessionRecord, *, ttl_s: int) -> None:
        with translate_errors("console session write"):
            self.store._count(1)
            await self.store.wire.call("SET", self.store.keys.console_session(digest),
                                       _encode(record), "EX", max(1, ttl_s))

    async def get(self, digest: str) -> SessionRecord | None:
        with translate_errors("console session lookup"):
            self.store._count(1)
            raw = await self.store.wire.call("GET", self.store.keys.console_session(digest))
        return _decode(raw) if raw else None

    async def delete(self, digest: str) -> None:
        with translate_errors("console session delete"):
            self.store._count(1)
            await self.store.wire.call("DEL", self.store.keys.console_session(digest))
