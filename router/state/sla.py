"""SLA state: claiming due deadlines, escalating breaches, owner actions, the facts for the report.

Everything here is one Lua script per state change (``lua/claim_due.lua``, ``lua/escalate.lua``,
``lua/owner.lua``, sharing ``lua/_sla.lua`` and the pool pick ``lua/_pick.lua``), so replicas
never race. What to do is decided in Python (``router/services/sla.py``, from the rules) and
handed to the scripts as a :class:`Move`; the scripts check that the lead is still where the
decision assumed and apply it atomically with its history, outbox event and SLA facts.

Exactly once: :meth:`SlaState.claim_due` moves each due schedule entry (``sla:due``) to a fence
score (now + lease) in one script; :meth:`SlaState.escalate` acts only while the entry still holds
that fence and removes or replaces it in the same script. See ``lua/claim_due.lua``.

The report reads ``sla:facts``, a stream bounded by MAXLEN (and a TTL of the decision
retention) whose entry ids are the facts' times in ms, so a time range is one ``XRANGE``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from router.engine.availability import PoolPlan
from router.engine.funnel import FunnelSpec
from router.state.codec import LeadWriteArg, text
from router.state.errors import check_reply, translate_errors
from router.state.funnel import FunnelArg, day_keys, day_of, expiry_ms, funnel_arg
from router.state.models import from_ms, to_ms
from router.state.scripts import PackedKeys, pack_keys
from router.state.store import Store

__all__ = ["Fact", "Move", "MoveResult", "OwnerResult", "SlaLead", "SlaState"]

_LEAD_FIELDS = ("state", "owner", "pool", "queue", "due_at", "owners", "reassignments", "sla",
                "assigned_at", "accepted_at", "sla_state")
_encode = msgspec.json.Encoder().encode


class SlaLead(msgspec.Struct, frozen=True, kw_only=True):
    """A lead's live SLA-relevant fields (one HMGET)."""

    lead_id: str
    state: str
    owner: str
    pool: str
    queue: str
    due_at: dt.datetime | None
    owners: tuple[str, ...]
    reassignments: int
    policy: str
    assigned_at: dt.datetime | None
    accepted_at: dt.datetime | None
    sla_state: str

    @property
    def due_ms(self) -> int:
        return to_ms(self.due_at) if self.due_at is not None else -1


class Move(msgspec.Struct, frozen=True, kw_only=True):
    """Where a lead goes next, decided from the rules.

    ``how``: ``notify`` (breach only: keep the owner, stop the clock), ``pick`` (a rep of the
    ``chain``, excluding every earlier owner and ``exclude``; nobody eligible → ``queue``),
    ``queue`` (no owner) or ``nurture`` (recycled to marketing into ``queue``). ``home`` is the
    pool that already counted the lead (a re-pick in it does not count against its pool cap).
    The new owner's deadline is ``due_by_rep[owner]`` or else ``due_at`` (None = no SLA).
    ``label`` says which rule asked for it (``reassign``, ``pool:emea``, ``final:queue:x``...).
    """

    how: Literal["notify", "pick", "queue", "nurture"]
    label: str = ""
    chain: tuple[PoolPlan, ...] = ()
    queue: str = ""
    home: str = ""
    due_at: dt.datetime | None = None
    due_by_rep: dict[str, dt.datetime] = {}
    exclude: tuple[str, ...] = ()


class MoveResult(msgspec.Struct, frozen=True, kw_only=True):
    """What an escalation did: ``notified`` / ``reassigned`` / ``queued`` / ``recycled``; or
    nothing: ``stale`` (another worker's claim), ``gone`` (expired), ``changed`` (moved on)."""

    status: str
    owner: str | None
    pool: str | None
    queue: str | None
    due_at: dt.datetime | None

    @property
    def acted(self) -> bool:
        return self.status in ("notified", "reassigned", "queued", "recycled")


class OwnerResult(msgspec.Struct, frozen=True, kw_only=True):
    """``ok``, ``not_found``, or ``changed`` (owner/state differ from the expected ones: the
    current ones are given)."""

    status: Literal["ok", "not_found", "changed"]
    owner: str | None
    state: str | None
    pool: str | None
    queue: str | None
    due_at: dt.datetime | None


class Fact(msgspec.Struct, frozen=True, kw_only=True):
    """One SLA fact: ``kind`` handoff | accept | breach | reassign | recycle, at ``at``.
    ``pool``/``queue``/``owner`` are the lead's before the fact; the rest depend on the kind
    (accept: ``tta_ms`` and ``in_time``; breach: ``action``; reassign: ``to``;
    recycle: ``reason``)."""

    kind: str
    at: dt.datetime
    lead_id: str
    policy: str
    pool: str
    queue: str
    owner: str
    tta_ms: int | None = None
    in_time: bool | None = None
    action: str | None = None
    reason: str | None = None
    to: str | None = None


class _Arg(LeadWriteArg, kw_only=True):
    """The escalate / owner scripts' ARGV[1]; no nulls (cjson turns null into a userdata)."""

    how: str
    label: str = ""
    pools: tuple[PoolPlan, ...] = ()
    queue: str = ""
    home: str = ""
    dueby: dict[str, int] = {}
    due_wall: int = -1
    exclude: tuple[str, ...] = ()
    # escalate
    fence: int = 0
    due: int = -1
    owner: str = ""
    # owner actions
    action: str = ""
    rep: str = ""
    expect_owner: str = ""
    expect_state: str = ""
    reason: str = ""
    note: str = ""
    via: str = ""  # the credential that acted for ``rep`` (admin-token, a key id), if any
    # accept / contacted: the funnel (lua/_funnel.lua): KEYS index of the lead's routing day
    # hashes (0 = none), the funnel, when the hashes expire
    fk: int = 0
    fs: FunnelArg = FunnelArg(stages=(), chain=(), won="", pairs=())
    fexp: int = 0


def _lxk(keys: Sequence[PackedKeys]) -> int:
    """The KEYS index of the list index zset: the last pack holds it and ``lx:vals``."""
    return sum(p.n for p in keys) - 1


def _ms(value: bytes | None) -> dt.datetime | None:
    return from_ms(value) if value else None


class SlaState:
    """The SLA operations on one :class:`Store` (sharing its connection)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.keys = store.keys

    # -- breach detection ----------------------------------------------------------------------

    async def claim_due(self, now: dt.datetime, *, lease: dt.timedelta,
                        batch: int) -> tuple[int, list[str]]:
        """Claim up to ``batch`` leads whose deadline is at or before ``now`` for ``lease``:
        returns the fence to pass to :meth:`escalate` and the lead ids (one round trip)."""
        reply = await self.store.run_script(
            "claim_due", [self.keys.sla_due],
            [str(to_ms(now)), str(int(lease.total_seconds() * 1000)), str(batch)])
        return int(reply[0]), [r.decode() for r in reply[1:]]

    async def read_leads(self, lead_ids: Sequence[str]) -> list[SlaLead | None]:
        """The SLA fields of each lead, None for a lead that is gone (one round trip)."""
        if not lead_ids:
            return []
        with translate_errors("sla_leads"):
            self.store.round_trips += 1
            replies = await self.store.wire.batch(
                [("HMGET", self.keys.lead(i), *_LEAD_FIELDS) for i in lead_ids])
        out: list[SlaLead | None] = []
        for lead_id, reply in zip(lead_ids, replies, strict=True):
            check_reply("sla_leads", reply)
            out.append(_lead(lead_id, reply))
        return out

    async def read_lead(self, lead_id: str) -> SlaLead | None:
        return (await self.read_leads([lead_id]))[0]

    def _keys(self, lead_id: str, owner: str, queue: str, target: str,
              chain: Sequence[PoolPlan]) -> list[PackedKeys]:
        k = self.keys
        own = pack_keys((k.lead(lead_id), k.history(lead_id), k.outbox, k.sla_due, k.sla_facts,
                         k.rep_open(owner or "-"), k.queue(queue or "-"),
                         k.queue(target or "-")))
        # Last: the list indexes (lua/_lx.lua), at KEYS[lxk], KEYS[lxk + 1] (see _lxk).
        return [own, *(self.store.pool_keys(p) for p in chain), pack_keys((k.lists,
                                                                          k.lists_vals))]

    def _arg(self, lead_id: str, now: dt.datetime, move: Move, **extra: Any) -> bytes:
        s = self.store
        return _encode(_Arg(
            id=lead_id, now=to_ms(now), ret=s.retention_ms, hmax=s.history_max,
            omax=s.outbox_maxlen, fmax=s.sla_facts_maxlen, how=move.how, label=move.label,
            pools=move.chain, queue=move.queue, home=move.home,
            dueby={rep: to_ms(t) for rep, t in move.due_by_rep.items()},
            due_wall=to_ms(move.due_at) if move.due_at else -1, exclude=move.exclude, **extra))

    async def escalate(self, lead: SlaLead, *, fence: int, move: Move,
                       now: dt.datetime) -> MoveResult:
        """Apply ``move`` to a breached lead claimed with ``fence``, exactly once (one EVALSHA):
        records the breach (history, ``lead.breached`` event, fact) and the move's own."""
        keys = self._keys(lead.lead_id, lead.owner, lead.queue, move.queue, move.chain)
        arg = self._arg(lead.lead_id, now, move, fence=fence, due=lead.due_ms, owner=lead.owner,
                        lxk=_lxk(keys))
        status, owner, pool, queue, due = await self.store.run_script("escalate", keys, [arg])
        return MoveResult(status=status.decode(), owner=text(owner), pool=text(pool),
                          queue=text(queue), due_at=from_ms(due) if due >= 0 else None)

    # -- owner actions -------------------------------------------------------------------------

    async def owner_action(self, lead: SlaLead, *, action: str, rep: str, now: dt.datetime,
                           move: Move | None = None, reason: str = "",
                           note: str = "", via: str = "",
                           funnel: FunnelSpec | None = None) -> OwnerResult:
        """Accept / contacted / reject by ``rep``, if ``lead`` still has the owner and state it
        was read with (one EVALSHA). ``move`` says where a rejected lead goes; ``via`` (the
        credential that acted for the rep) is recorded in the history entry."""
        move = move or Move(how="nurture")
        keys = self._keys(lead.lead_id, lead.owner, lead.queue, move.queue, move.chain)
        fun: dict[str, Any] = {}
        if funnel is not None and action != "reject" and lead.assigned_at is not None:
            # The lead's routing day hashes, before the list indexes (which stay last).
            start = to_ms(lead.assigned_at) - to_ms(lead.assigned_at) % 86_400_000
            keys.insert(len(keys) - 1, day_keys(self.keys, day_of(start)))
            fun = {"fk": sum(p.n for p in keys[:-2]) + 1, "fs": funnel_arg(funnel),
                   "fexp": expiry_ms(start, self.store.retention_ms)}
        arg = self._arg(lead.lead_id, now, move, action=action, rep=rep,
                        expect_owner=lead.owner, expect_state=lead.state, reason=reason,
                        note=note, via=via, lxk=_lxk(keys), **fun)
        status, owner, state, pool, queue, due = await self.store.run_script(
            "owner", keys, [arg])
        return OwnerResult(status=status.decode(), owner=text(owner), state=text(state),
                           pool=text(pool), queue=text(queue),
                           due_at=from_ms(due) if due >= 0 else None)

    # -- report --------------------------------------------------------------------------------

    async def facts(self, since: dt.datetime, until: dt.datetime, *,
                    page: int = 5000) -> list[Fact]:
        """Every fact with ``since <= at <= until`` (one XRANGE per ``page`` facts)."""
        out: list[Fact] = []
        start, end = f"{to_ms(since)}-0", f"{to_ms(until)}-{2**64 - 1}"
        while True:
            with translate_errors("sla_facts"):
                self.store.round_trips += 1
                entries = await self.store.wire.call("XRANGE", self.keys.sla_facts, start, end,
                                                     "COUNT", page)
            for entry_id, flat in entries:
                out.append(_fact(entry_id.decode(), flat))
            if len(entries) < page:
                return out
            start = "(" + entries[-1][0].decode()


def _lead(lead_id: str, f: list[bytes | None]) -> SlaLead | None:
    state, owner, pool, queue, due, owners, reassignments, policy, assigned, accepted, sla = f
    if state is None:
        return None
    own = text(owner) or ""
    every = text(owners) or own
    return SlaLead(lead_id=lead_id, state=state.decode(), owner=own, pool=text(pool) or "",
                   queue=text(queue) or "", due_at=_ms(due),
                   owners=tuple(every.split(",")) if every else (),
                   reassignments=int(reassignments or 0), policy=text(policy) or "",
                   assigned_at=_ms(assigned), accepted_at=_ms(accepted),
                   sla_state=text(sla) or "")


def _fact(entry_id: str, flat: list[bytes]) -> Fact:
    f = {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
    tta = f.get("tta")
    return Fact(kind=f.get("t", ""), at=from_ms(entry_id.split("-", 1)[0]),
                lead_id=f.get("lead", ""), policy=f.get("policy", ""), pool=f.get("pool", ""),
                queue=f.get("queue", ""), owner=f.get("owner", ""),
                tta_ms=int(tta) if tta else None,
                in_time=f["in_time"] == "1" if "in_time" in f else None,
                action=f.get("action"), reason=f.get("reason"), to=f.get("to"))
