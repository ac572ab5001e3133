"""The engagement store's data model: person ids and keys, the bounds, the records the scripts
and reads return, and how the replies are decoded (router/state/engagement.py is the public
face; the key layout is documented there)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from router.engine.engagement import DAY_MS, HORIZON_MS, MAX_TIMES, Activity, TypeActivity
from router.state.codec import text
from router.state.erasure import person_hash
from router.state.keys import Keys
from router.state.wire import Arg

__all__ = ["Cause", "EngagementKeys", "EngagementLimits", "LeadRead", "PersonRead",
           "PersonState", "Recorded", "RequalifyResult", "alias_id", "decode_lead_ref",
           "email_person", "encode", "from_ms_bytes", "lead_commands", "lead_person",
           "lead_read", "parse_person", "want"]

encode = msgspec.json.Encoder().encode
_decode_traits = msgspec.json.Decoder(dict[str, Any]).decode


class EngagementLimits(msgspec.Struct, frozen=True, kw_only=True):
    """What keeps a person's state bounded (see router/state/engagement.py)."""

    max_types: int = 50
    max_times: int = MAX_TIMES
    horizon_ms: int = HORIZON_MS
    ttl_ms: int = 400 * DAY_MS
    alias_ttl_ms: int = 400 * DAY_MS
    seen_max: int = 500
    seen_ttl_ms: int = 2 * DAY_MS
    recent_max: int = 20
    ids_max: int = 20

    @classmethod
    def retained(cls, retention_ms: int) -> EngagementLimits:
        """The limits for an engagement retention (``LEADROUTER_ENGAGEMENT_RETENTION``): a
        person's record and the aliases pointing to it expire ``retention_ms`` after their last
        write, event times older than it are not kept one by one (folded into the decayed
        remainder when their type is next written), seen message ids at most that long. The
        default (400 days) gives the default limits."""
        base = cls()
        return cls(ttl_ms=retention_ms, alias_ttl_ms=retention_ms,
                   horizon_ms=min(base.horizon_ms, retention_ms),
                   seen_ttl_ms=min(base.seen_ttl_ms, retention_ms))


def _short(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def email_person(email: str) -> str:
    return "e:" + person_hash(email)


def lead_person(lead_id: str) -> str:
    return "l:" + lead_id


def alias_id(kind: Literal["a", "u"], value: str) -> str:
    """``a:`` anonymousId, ``u:`` userId — hashed: ids may be personal data."""
    return f"{kind}:{_short(value)}"


class EngagementKeys:
    """Short names for the engagement keys of ``keys.py``."""

    def __init__(self, keys: Keys) -> None:
        self.person = keys.engagement
        self.seen = keys.engagement_seen
        self.alias = keys.engagement_alias


class Cause(msgspec.Struct, frozen=True, array_like=True):
    """One recent change of a person's engagement: ``[seq, event, at ms, messageId]``."""

    seq: int
    event: str
    at: int
    message_id: str = ""


_decode_causes = msgspec.json.Decoder(list[Cause]).decode


class PersonState(msgspec.Struct, frozen=True, kw_only=True):
    """What a script or a read returned about one person."""

    person: str
    lead: str | None = None
    dom: str | None = None
    seq: int = 0
    traits: dict[str, Any] | None = None
    traits_at: dt.datetime | None = None
    recent: tuple[Cause, ...] = ()
    activity: Activity = Activity()


_WANT: dict[tuple[str, ...], tuple[str, ...]] = {}


def want(types: Sequence[str]) -> tuple[str, ...]:
    """The hash fields to read for ``types`` (built once per set of event types)."""
    key = tuple(types)
    fields = _WANT.get(key)
    if fields is None:
        if len(_WANT) >= 64:  # one entry per ruleset's event list: reloads only
            _WANT.clear()
        fields = _WANT[key] = ("traits", "traits_at", "recent", *(f"e:{t}" for t in key))
    return fields


def parse_person(person: str, types: Sequence[str], values: Sequence[bytes | None], *,
                 lead: str | None = None, dom: str | None = None, seq: int = 0) -> PersonState:
    traits_raw, traits_at, recent_raw, *rest = values
    parsed: dict[str, TypeActivity] = {}
    for event, raw in zip(types, rest, strict=True):
        if raw:
            parsed[event] = TypeActivity.decode(raw)
    traits = _decode_traits(traits_raw) if traits_raw else None
    return PersonState(
        person=person, lead=lead, dom=dom, seq=seq, traits=traits or None,
        traits_at=dt.datetime.fromtimestamp(int(traits_at) / 1000, dt.UTC) if traits_at
        else None,
        recent=tuple(_decode_causes(recent_raw)) if recent_raw and recent_raw != b"{}" else (),
        activity=Activity(seq=seq, types=parsed))


class PersonRead:
    """The prefetch read of one person (an :class:`router.state.store.ExtraRead`): one HMGET
    in the lead's pipelined read, whatever the rules ask for."""

    def __init__(self, person: str, types: Sequence[str]) -> None:
        self.person = person
        self.types = tuple(types)

    def commands(self, keys: Keys) -> Sequence[tuple[Arg, ...]]:
        return [("HMGET", keys.engagement(self.person), "seq", "lead", *want(self.types))]

    def parse(self, replies: list[Any]) -> PersonState:
        seq, lead, *values = replies[0]
        return parse_person(self.person, self.types, values, lead=text(lead),
                            seq=int(seq) if seq else 0)


class Recorded(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of an event or identify script. ``status``: ``ok``, ``duplicate``
    (messageId seen before), ``ignored`` (too many event types), ``moved`` (an alias changed
    meanwhile: resolve again)."""

    status: str
    state: PersonState
    merged: int = 0


class LeadRead(msgspec.Struct, frozen=True, kw_only=True):
    """An existing lead as the re-qualification needs it (one pipelined read)."""

    lead_id: str
    decision: bytes
    state: str
    owner: str
    pool: str
    queue: str
    status: str | None
    eng_seq: int
    due_at: dt.datetime | None
    sla_state: str
    account_domain: str | None = None  # whose owner account_owner is
    account_owner: str | None = None


_LEAD_FIELDS = ("decision", "state", "owner", "pool", "queue", "status", "eng_seq", "due_at",
                "sla_state")


def lead_commands(keys: Keys, lead_id: str, account_domain: str | None) -> list[tuple[Arg, ...]]:
    """The read of an existing lead and of the owner of ``account_domain`` (see lead_read)."""
    cmds: list[tuple[Arg, ...]] = [("HMGET", keys.lead(lead_id), *_LEAD_FIELDS)]
    if account_domain:
        cmds.append(("HGET", keys.account(account_domain), "owner"))
    return cmds


def lead_read(lead_id: str, replies: Sequence[Any],
              account_domain: str | None) -> LeadRead | None:
    decision, state, owner, pool, queue, status, eng_seq, due, sla_state = replies[0]
    if decision is None or state is None:
        return None
    return LeadRead(lead_id=lead_id, decision=decision, state=state.decode(),
                    owner=text(owner) or "", pool=text(pool) or "", queue=text(queue) or "",
                    status=text(status), eng_seq=int(eng_seq or 0), due_at=from_ms_bytes(due),
                    sla_state=text(sla_state) or "", account_domain=account_domain,
                    account_owner=text(replies[1]) if account_domain else None)


class _LeadRef(msgspec.Struct):
    lead: dict[str, Any] = {}
    source: str | None = None


decode_lead_ref = msgspec.json.Decoder(_LeadRef).decode


class RequalifyResult(msgspec.Struct, frozen=True, kw_only=True):
    """``requalified`` / ``rescored`` / ``unchanged`` (applied), or nothing done: ``stale``,
    ``changed``, ``not_found``. The fields are the lead's after the script."""

    status: str
    owner: str | None
    state: str | None
    pool: str | None
    queue: str | None
    due_at: dt.datetime | None

    @property
    def applied(self) -> bool:
        return self.status in ("requalified", "rescored", "unchanged")


def from_ms_bytes(value: bytes | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(int(value) / 1000, dt.UTC) if value else None
