"""Engagement state: events per person, aliases, and the re-qualification of existing leads.

Key layout (all under the store's prefix; every key of one person shares the hash tag, so the
event script touches one cluster slot)::

    {eng:PERSON}             hash    lead, dom, seq, nt, traits, traits_at, recent, ids,
                                     e:<type> = [n, rem, rem_at, t1..tk]   TTL R after the
                                                                            last event
    {eng:PERSON}:seen        zset    messageIds → received ms, newest 500   TTL min(2 d, R)
    {eng:alias:KIND:HASH}    str     PERSON an anonymous / user id stands for     TTL R

``R`` is the engagement retention (``LEADROUTER_ENGAGEMENT_RETENTION``, 400 days by default,
:meth:`EngagementLimits.retained`); event times older than ``min(365 d, R)`` are folded when
their type is next written.

``PERSON`` is ``e:<sha256 of the email>`` (the same hash as the erasure index, so no address
appears in a key), ``a:<hash>`` / ``u:<hash>`` for an anonymousId / userId nobody identified
yet, ``l:<lead id>`` for a lead without an email.

Bounds per person: at most ``max_types`` event types (types the rules read are always kept),
each with at most ``max_times`` times and none older than the 365-day horizon (older ones fold
into one decayed remainder, see router/engine/engagement.py), ``recent_max`` causes, the seen
set capped by count and age. So a person costs a few KB however many events arrive.

Scripts: ``lua/event.lua`` (record one event), ``lua/identify.lua`` (aliases, merges, traits),
``lua/requalify.lua`` (apply a re-evaluation to an existing lead: rescore, or hand it over with
the shared pool pick ``_pick.lua`` and SLA bookkeeping ``_sla.lua``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec

from router.engine.availability import PoolPlan
from router.engine.engagement import (
    DAY_MS,
    HORIZON_MS,
    MAX_TIMES,
    Activity,
    TypeActivity,
    from_ms,
    ms,
)
from router.state.codec import text
from router.state.erasure import person_hash
from router.state.errors import check_reply, translate_errors
from router.state.keys import Keys
from router.state.scripts import PackedKeys, Script, _expand, _read, pack_keys
from router.state.store import Store
from router.state.wire import Arg, ReplyError

__all__ = [
    "Cause",
    "EngagementLimits",
    "EngagementStore",
    "LeadRead",
    "PersonRead",
    "PersonState",
    "Recorded",
    "Requalify",
    "RequalifyResult",
    "email_person",
    "erase_person",
    "lead_person",
]

_encode = msgspec.json.Encoder().encode
_decode_traits = msgspec.json.Decoder(dict[str, Any]).decode


class EngagementLimits(msgspec.Struct, frozen=True, kw_only=True):
    """What keeps a person's state bounded (see the module doc)."""

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


def _want(types: Sequence[str]) -> tuple[str, ...]:
    """The hash fields to read for ``types`` (built once per set of event types)."""
    key = tuple(types)
    fields = _WANT.get(key)
    if fields is None:
        if len(_WANT) >= 64:  # one entry per ruleset's event list: reloads only
            _WANT.clear()
        fields = _WANT[key] = ("traits", "traits_at", "recent", *(f"e:{t}" for t in key))
    return fields


def _parse(person: str, types: Sequence[str], values: Sequence[bytes | None], *,
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
        return [("HMGET", keys.engagement(self.person), "seq", "lead", *_want(self.types))]

    def parse(self, replies: list[Any]) -> PersonState:
        seq, lead, *values = replies[0]
        return _parse(self.person, self.types, values, lead=text(lead),
                      seq=int(seq) if seq else 0)


class Recorded(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of an event or identify script. ``status``: ``ok``, ``duplicate``
    (messageId seen before), ``ignored`` (too many event types), ``moved`` (an alias changed
    meanwhile: resolve again)."""

    status: str
    state: PersonState
    merged: int = 0


class _EventArg(msgspec.Struct, kw_only=True):
    now: int
    at: int
    ev: str
    mid: str
    tracked: bool
    maxtypes: int
    maxtimes: int
    horizon: int
    h: int
    ttl: int
    seen_max: int
    seen_ttl: int
    recent_max: int
    expect: list[str]
    link: str
    dom: str
    want: list[str]


class _Source(msgspec.Struct):
    id: str
    expect: str


class _IdentifyArg(msgspec.Struct, kw_only=True):
    now: int
    target: str
    sources: list[_Source]
    traits: str
    mid: str
    tracked: dict[str, bool]
    maxtypes: int
    maxtimes: int
    horizon: int
    h: int
    ttl: int
    alias_ttl: int
    ids_max: int
    seen_max: int
    seen_ttl: int
    recent_max: int
    link: str
    dom: str
    want: list[str]


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


class Requalify(msgspec.Struct, frozen=True, kw_only=True):
    """One re-evaluation to apply (see lua/requalify.lua for the modes). ``expect_*`` are the
    lead's fields as read: the script refuses (``changed``) if any moved meanwhile."""

    lead_id: str
    now: dt.datetime
    seq: int
    mode: Literal["seq", "rescore", "keep", "route"]
    status: str
    decision: bytes
    expect_owner: str
    expect_state: str
    expect_queue: str
    expect_status: str
    entry: dict[str, Any]
    kind: str = "queue"
    target: str | None = None
    owner_day: str | None = None
    reason: str = ""
    rule: str | None = None
    sla_policy: str | None = None
    queue: str = "unassigned"
    chain: tuple[PoolPlan, ...] = ()
    due_at: dt.datetime | None = None
    due_by_rep: dict[str, dt.datetime] = {}


class _Expect(msgspec.Struct):
    owner: str
    state: str
    queue: str
    status: str


class _RequalifyArg(msgspec.Struct, kw_only=True):
    id: str
    now: int
    ret: int
    hmax: int
    omax: int
    fmax: int
    seq: int
    mode: str
    status: str
    expect: _Expect
    kind: str
    target: str
    why: str
    rule: str
    sla: str
    queue: str
    pools: tuple[PoolPlan, ...]
    due_wall: int
    dueby: dict[str, int]
    entry: dict[str, Any]


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


def _script(name: str) -> Script:
    return Script(name, f"{_read('_lib.lua')}\n{_expand(_read(name + '.lua'))}")


_SCRIPTS: dict[str, Script] = {}


def _scripts() -> dict[str, Script]:
    if not _SCRIPTS:
        _SCRIPTS.update({n: _script(n) for n in ("event", "identify", "requalify")})
    return _SCRIPTS


def _dt(value: bytes | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(int(value) / 1000, dt.UTC) if value else None


class EngagementStore:
    """The engagement operations on one :class:`Store` (sharing its connection)."""

    def __init__(self, store: Store, limits: EngagementLimits | None = None) -> None:
        self.store = store
        self.keys = EngagementKeys(store.keys)
        self.limits = limits or EngagementLimits()
        self.scripts = _scripts()

    def _count(self, n: int) -> None:
        self.store.round_trips += n

    async def _run(self, name: str, keys: Sequence[str] | Sequence[PackedKeys],
                   args: Sequence[str | bytes]) -> Any:
        with translate_errors(name):
            return await self.scripts[name](self.store.wire, keys, args, self._count)

    async def load_scripts(self) -> None:
        """SCRIPT LOAD the engagement scripts (else the first call loads them on NOSCRIPT)."""
        with translate_errors("script load"):
            self._count(1)
            replies = await self.store.wire.batch(
                [("SCRIPT", "LOAD", sc.source) for sc in self.scripts.values()])
        for reply in replies:
            check_reply("script load", reply)

    # -- identity ------------------------------------------------------------------------------

    async def resolve(self, aliases: Sequence[str]) -> list[str | None]:
        """The person each alias id stands for, or None (one round trip)."""
        if not aliases:
            return []
        with translate_errors("resolve"):
            self._count(1)
            values = await self.store.wire.call(
                "MGET", *(self.keys.alias(a) for a in aliases))
        return [text(v) for v in values]

    async def lead_email(self, lead_id: str) -> tuple[bool, str | None, str | None]:
        """(exists, email, source) of a stored lead (one round trip)."""
        with translate_errors("lead_email"):
            self._count(1)
            raw = await self.store.wire.call("HGET", self.store.keys.lead(lead_id), "decision")
        if raw is None:
            return False, None, None
        record = _decode_lead_ref(raw)
        email = record.lead.get("email")
        return True, email if isinstance(email, str) else None, record.source

    async def lead_by_external_id(self, scopes: Sequence[str], external_id: str) -> str | None:
        """The lead an ``external_id`` created: its idempotency record under the first of
        ``scopes`` (``ext:<channel>:<lead source>``, see router/services/leads.py) that has one (one
        round trip); None if there is none."""
        if not scopes:
            return None
        with translate_errors("external_id"):
            self._count(1)
            values = await self.store.wire.call(
                "MGET", *(self.store.keys.idempotency(sc, external_id) for sc in scopes))
        for value in values:
            kind, _, rest = (value or b"").decode().partition("|")
            if kind == "D":
                return rest.partition("|")[2]
        return None

    # -- events --------------------------------------------------------------------------------

    def _common(self, now: dt.datetime, half_life_ms: int, link: str | None,
                dom: str | None, types: Sequence[str]) -> dict[str, Any]:
        lim = self.limits
        return {"now": ms(now), "maxtypes": lim.max_types, "maxtimes": lim.max_times,
                "horizon": lim.horizon_ms, "h": half_life_ms, "ttl": lim.ttl_ms,
                "seen_max": lim.seen_max, "seen_ttl": lim.seen_ttl_ms,
                "recent_max": lim.recent_max, "link": link or "", "dom": dom or "",
                "want": _want(types)}

    def _recorded(self, person: str, types: Sequence[str], reply: list[Any]) -> Recorded:
        status, lead, seq, dom, values, merged = reply
        state = PersonState(person=person)
        if status != b"moved":
            state = _parse(person, types, values, lead=text(lead), dom=text(dom),
                           seq=int(seq))
        return Recorded(status=status.decode(), state=state, merged=int(merged))

    async def record(self, person: str, *, event: str, at: dt.datetime, now: dt.datetime,
                     message_id: str | None, types: Sequence[str], half_life_ms: int,
                     expect: Mapping[str, str | None] | None = None, link: str | None = None,
                     dom: str | None = None, read_lead: str | None = None,
                     account_domain: str | None = None) -> tuple[Recorded, LeadRead | None]:
        """Record one event (one EVALSHA); returns the person's state after it, with the
        ``types`` the rules read. ``expect``: alias id → the person it was resolved to.
        ``read_lead``: also read that lead (and the owner of ``account_domain``) in the same
        round trip, right after the script — the lead the event will most likely re-score."""
        expect = dict(expect or {})
        keys = [self.keys.person(person), self.keys.seen(person),
                *(self.keys.alias(a) for a in expect)]
        arg = _encode(_EventArg(ev=event, at=min(ms(at), ms(now)), mid=message_id or "",
                                tracked=event in types,
                                expect=[v or "" for v in expect.values()],
                                **self._common(now, half_life_ms, link, dom, types)))
        if read_lead is None:
            reply = await self._run("event", keys, [arg])
            return self._recorded(person, types, reply), None
        script = self.scripts["event"]
        cmds: list[tuple[Arg, ...]] = [("EVALSHA", script.sha, len(keys), *keys, arg),
                *self._lead_commands(read_lead, account_domain)]
        with translate_errors("event"):
            self._count(1)
            replies = await self.store.wire.batch(cmds)
            if isinstance(replies[0], ReplyError) and str(replies[0]).startswith("NOSCRIPT"):
                self._count(2)
                await self.store.wire.call("SCRIPT", "LOAD", script.source)
                replies = await self.store.wire.batch(cmds)
        for reply in replies:
            check_reply("event", reply)
        return (self._recorded(person, types, replies[0]),
                _lead_read(read_lead, replies[1:], account_domain))

    async def identify(self, target: str, *, now: dt.datetime, sources: Mapping[str, str | None],
                       traits: Mapping[str, Any] | None, message_id: str | None,
                       types: Sequence[str], half_life_ms: int, link: str | None = None,
                       dom: str | None = None) -> Recorded:
        """Point ``sources`` (alias id → what it resolved to when read) at ``target``, merge
        their histories into it and its traits with ``traits`` (one EVALSHA)."""
        keys = [self.keys.person(target), self.keys.seen(target)]
        for alias in sources:
            keys += [self.keys.alias(alias), self.keys.person(alias), self.keys.seen(alias)]
        arg = _IdentifyArg(target=target,
                           sources=[_Source(a, v or "") for a, v in sources.items()],
                           traits=_encode(dict(traits)).decode() if traits else "",
                           mid=message_id or "", tracked=dict.fromkeys(types, True),
                           alias_ttl=self.limits.alias_ttl_ms, ids_max=self.limits.ids_max,
                           **self._common(now, half_life_ms, link, dom, types))
        reply = await self._run("identify", keys, [_encode(arg)])
        return self._recorded(target, types, reply)

    async def person(self, person: str, types: Sequence[str] | None = None) -> PersonState | None:
        """Everything stored about ``person`` (all its event types unless ``types``)."""
        with translate_errors("person"):
            self._count(1)
            flat = await self.store.wire.call("HGETALL", self.keys.person(person))
        if not flat:
            return None
        f = {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}
        names = list(types) if types is not None else sorted(
            k[2:] for k in f if k.startswith("e:"))
        values = [f.get(k) for k in _want(names)]
        return _parse(person, names, values, lead=text(f.get("lead")), dom=text(f.get("dom")),
                      seq=int(f.get("seq") or 0))

    # -- re-qualification ----------------------------------------------------------------------

    def _lead_commands(self, lead_id: str, account_domain: str | None) -> list[tuple[Arg, ...]]:
        cmds: list[tuple[Arg, ...]] = [("HMGET", self.store.keys.lead(lead_id), *_LEAD_FIELDS)]
        if account_domain:
            cmds.append(("HGET", self.store.keys.account(account_domain), "owner"))
        return cmds

    async def read_lead(self, lead_id: str, account_domain: str | None) -> LeadRead | None:
        """The lead's decision and live fields, and the owner of ``account_domain`` (one
        round trip); None if the lead is gone."""
        with translate_errors("read_lead"):
            self._count(1)
            replies = await self.store.wire.batch(self._lead_commands(lead_id, account_domain))
        for reply in replies:
            check_reply("read_lead", reply)
        return _lead_read(lead_id, replies, account_domain)

    async def account_owner(self, domain: str) -> str | None:
        with translate_errors("account"):
            self._count(1)
            return text(await self.store.wire.call(
                "HGET", self.store.keys.account(domain), "owner"))

    async def requalify(self, plan: Requalify) -> RequalifyResult:
        """Apply one re-evaluation (one EVALSHA of lua/requalify.lua)."""
        k, s = self.store.keys, self.store
        own = [k.lead(plan.lead_id), k.history(plan.lead_id), k.outbox, k.sla_due, k.sla_facts,
               k.rep_open(plan.expect_owner or "-"), k.queue(plan.expect_queue or "-"),
               k.queue(plan.queue or "-")]
        keys: list[PackedKeys] = [pack_keys(own)]
        if plan.mode == "route" and plan.kind == "pool":
            keys += [s.pool_keys(p) for p in plan.chain]
        elif plan.mode == "route" and plan.kind in ("owner", "account_owner") and plan.target:
            keys.append(pack_keys((k.rep_day(plan.target, plan.owner_day or
                                             plan.now.astimezone(dt.UTC).date().isoformat()),
                                   k.rep_open(plan.target))))
        arg = _RequalifyArg(
            id=plan.lead_id, now=ms(plan.now), ret=s.retention_ms, hmax=s.history_max,
            omax=s.outbox_maxlen, fmax=s.sla_facts_maxlen, seq=plan.seq, mode=plan.mode,
            status=plan.status,
            expect=_Expect(plan.expect_owner, plan.expect_state, plan.expect_queue,
                           plan.expect_status),
            kind=plan.kind, target=plan.target or "", why=plan.reason, rule=plan.rule or "",
            sla=plan.sla_policy or "", queue=plan.queue,
            pools=plan.chain if plan.mode == "route" and plan.kind == "pool" else (),
            due_wall=ms(plan.due_at) if plan.due_at else -1,
            dueby={rep: ms(when) for rep, when in plan.due_by_rep.items()}, entry=plan.entry)
        status, owner, state, pool, queue, due = await self._run(
            "requalify", keys, [_encode(arg), plan.decision])
        return RequalifyResult(status=status.decode(), owner=text(owner), state=text(state),
                               pool=text(pool), queue=text(queue),
                               due_at=from_ms(due) if due >= 0 else None)

    # -- erasure -------------------------------------------------------------------------------

    async def erase(self, persons: Sequence[str]) -> int:
        """Delete everything stored about ``persons`` and the aliases that point to them (two
        round trips); returns how many events they held."""
        if not persons:
            return 0
        with translate_errors("erase engagement"):
            self._count(1)
            replies = await self.store.wire.batch(
                [("HGETALL", self.keys.person(p)) for p in persons])
        doomed: list[str] = []
        events = 0
        for person, flat in zip(persons, replies, strict=True):
            check_reply("erase engagement", flat)
            f = {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}
            events += sum(TypeActivity.decode(v).n for k, v in f.items() if k.startswith("e:"))
            aliases = [a for a in (f.get("ids") or b"").decode().split(",") if a]
            doomed += [self.keys.person(person), self.keys.seen(person),
                       *(self.keys.alias(a) for a in aliases)]
        with translate_errors("erase engagement"):
            self._count(1)
            await self.store.wire.call("DEL", *doomed)
        return events


async def erase_person(store: Store, *, email: str, lead_ids: Sequence[str] = ()) -> int:
    """Erase one email's engagement (events, traits, identified ids) and that of its leads
    without the email; returns how many events were erased. For ``DELETE /v1/people/{email}``
    (router/api/people.py)."""
    return await EngagementStore(store).erase(
        [email_person(email), *(lead_person(i) for i in lead_ids)])


def _lead_read(lead_id: str, replies: Sequence[Any],
               account_domain: str | None) -> LeadRead | None:
    decision, state, owner, pool, queue, status, eng_seq, due, sla_state = replies[0]
    if decision is None or state is None:
        return None
    return LeadRead(lead_id=lead_id, decision=decision, state=state.decode(),
                    owner=text(owner) or "", pool=text(pool) or "", queue=text(queue) or "",
                    status=text(status), eng_seq=int(eng_seq or 0), due_at=_dt(due),
                    sla_state=text(sla_state) or "", account_domain=account_domain,
                    account_owner=text(replies[1]) if account_domain else None)


class _LeadRef(msgspec.Struct):
    lead: dict[str, Any] = {}
    source: str | None = None


_decode_lead_ref = msgspec.json.Decoder(_LeadRef).decode
