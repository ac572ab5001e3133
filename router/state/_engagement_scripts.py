"""The engagement store's writes: one EVALSHA each of ``lua/event.lua`` (record one event),
``lua/identify.lua`` (aliases, merges, traits) and ``lua/requalify.lua`` (apply a
re-evaluation to an existing lead), with the JSON argument each script reads. The reads and
the public face are router/state/engagement.py; the records and decoding
router/state/_engagement_model.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec

from router.engine.availability import PoolPlan
from router.engine.engagement import from_ms, ms
from router.state._engagement_model import (
    EngagementKeys,
    EngagementLimits,
    LeadRead,
    PersonState,
    Recorded,
    RequalifyResult,
    encode,
    lead_commands,
    lead_read,
    parse_person,
    want,
)
from router.state.codec import LeadWriteArg, text
from router.state.errors import check_reply, translate_errors
from router.state.scripts import PackedKeys, Script, _expand, _read, pack_keys
from router.state.store import Store
from router.state.wire import Arg, ReplyError

__all__ = ["EngagementScripts", "Requalify"]


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
    update: bool = False  # new lead data (an external_id repeat), not an event: no seq check


class _Expect(msgspec.Struct):
    owner: str
    state: str
    queue: str
    status: str


class _RequalifyArg(LeadWriteArg, kw_only=True):
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
    update: bool = False


def _script(name: str) -> Script:
    return Script(name, f"{_read('_lib.lua')}\n{_expand(_read(name + '.lua'))}")


_SCRIPTS: dict[str, Script] = {}


def _scripts() -> dict[str, Script]:
    if not _SCRIPTS:
        _SCRIPTS.update({n: _script(n) for n in ("event", "identify", "requalify")})
    return _SCRIPTS


class EngagementScripts:
    """The script calls of an engagement store on one :class:`Store` (sharing its connection);
    :class:`router.state.engagement.EngagementStore` adds the reads."""

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

    # -- events --------------------------------------------------------------------------------

    def _common(self, now: dt.datetime, half_life_ms: int, link: str | None,
                dom: str | None, types: Sequence[str]) -> dict[str, Any]:
        lim = self.limits
        return {"now": ms(now), "maxtypes": lim.max_types, "maxtimes": lim.max_times,
                "horizon": lim.horizon_ms, "h": half_life_ms, "ttl": lim.ttl_ms,
                "seen_max": lim.seen_max, "seen_ttl": lim.seen_ttl_ms,
                "recent_max": lim.recent_max, "link": link or "", "dom": dom or "",
                "want": want(types)}

    def _recorded(self, person: str, types: Sequence[str], reply: list[Any]) -> Recorded:
        status, lead, seq, dom, values, merged = reply
        state = PersonState(person=person)
        if status != b"moved":
            state = parse_person(person, types, values, lead=text(lead), dom=text(dom),
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
        arg = encode(_EventArg(ev=event, at=min(ms(at), ms(now)), mid=message_id or "",
                                tracked=event in types,
                                expect=[v or "" for v in expect.values()],
                                **self._common(now, half_life_ms, link, dom, types)))
        if read_lead is None:
            reply = await self._run("event", keys, [arg])
            return self._recorded(person, types, reply), None
        script = self.scripts["event"]
        cmds: list[tuple[Arg, ...]] = [("EVALSHA", script.sha, len(keys), *keys, arg),
                *lead_commands(self.store.keys, read_lead, account_domain)]
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
                lead_read(read_lead, replies[1:], account_domain))

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
                           traits=encode(dict(traits)).decode() if traits else "",
                           mid=message_id or "", tracked=dict.fromkeys(types, True),
                           alias_ttl=self.limits.alias_ttl_ms, ids_max=self.limits.ids_max,
                           **self._common(now, half_life_ms, link, dom, types))
        reply = await self._run("identify", keys, [encode(arg)])
        return self._recorded(target, types, reply)

    # -- re-qualification ----------------------------------------------------------------------

    async def requalify(self, plan: Requalify) -> RequalifyResult:
        """Apply one re-evaluation (one EVALSHA of lua/requalify.lua)."""
        k, s = self.store.keys, self.store
        own = [k.lead(plan.lead_id), k.history(plan.lead_id), k.outbox, k.sla_due, k.sla_facts,
               k.rep_open(plan.expect_owner or "-"), k.queue(plan.expect_queue or "-"),
               k.queue(plan.queue or "-")]
        keys: list[PackedKeys] = [pack_keys(own)]
        if plan.mode == "route" and plan.kind == "pool":
            keys += [s.pool_keys(p) for p in plan.chain]
        # The list indexes (lua/_lx.lua) before the owner's keys: those are the last two.
        keys.append(pack_keys((k.lists, k.lists_vals)))
        lxk = sum(p.n for p in keys) - 1
        if plan.mode == "route" and plan.kind in ("owner", "account_owner") and plan.target:
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
            dueby={rep: ms(when) for rep, when in plan.due_by_rep.items()}, entry=plan.entry,
            update=plan.update, lxk=lxk)
        status, owner, state, pool, queue, due = await self._run(
            "requalify", keys, [encode(arg), plan.decision])
        return RequalifyResult(status=status.decode(), owner=text(owner), state=text(state),
                               pool=text(pool), queue=text(queue),
                               due_at=from_ms(due) if due >= 0 else None)
