"""Encoding of script arguments and decoding of Redis replies into the public Structs.

Kept apart from ``store.py`` so the store reads as the list of operations it offers.
"""

from __future__ import annotations

import math
import time
from typing import Any

import msgspec

from router.engine.availability import PoolPlan
from router.state.models import HistoryEntry, MemberStats, PoolStats, StoredLead, from_ms

__all__ = [
    "LeadWriteArg", "LuaPlan", "LxKeep", "PoolStatsArg", "lx_args", "parse_history",
    "pool_stats_from_reply", "stored_lead", "text",
]


def text(value: bytes | None) -> str | None:
    return value.decode() if value else None


class LeadWriteArg(msgspec.Struct, kw_only=True):
    """What every script that writes a lead reads from its ARGV[1] (commit, requalify,
    escalate, owner), under the names the Lua libraries use (``lead_event`` and ``sla_keep``
    in ``lua/_sla.lua``, ``sla_fact``, the pool pick's ``ctx``). Each script's argument
    extends it; msgspec encodes by field name, so the scripts see the same keys."""

    id: str  # the lead: its keys are in KEYS, its id goes into events, facts, queues
    now: int  # the caller's clock (epoch ms): every time the script writes
    ret: int  # decision retention (ms): TTL of the lead, its history, queues and facts
    hmax: int  # most history entries kept per lead (LTRIM)
    omax: int  # MAXLEN ~ of the outbox stream
    fmax: int  # MAXLEN ~ of the SLA facts stream
    # KEYS index of the list indexes (lx, then lx:vals; lua/_lx.lua): the moves keep them.
    lxk: int = 0


class LuaPlan(LeadWriteArg, kw_only=True):
    """The commit script's ARGV[1], as MessagePack (``cmsgpack.unpack``); short names and no
    nulls (a nil would leave a hole in a Lua table)."""

    kind: str
    target: str
    idem: int  # ms a completed idempotency / external_id record is kept (capped by the lead's)
    why: str
    rule: str
    sla: str
    queue: str
    due: int
    dueby: dict[str, int]
    pools: tuple[PoolPlan, ...]
    claims: tuple[tuple[str, str], ...]
    # engagement: KEYS index of the person's hash (0 = none), its seq as read, domain, TTL
    eng: int = 0
    eng_seq: int = 0
    eng_dom: str = ""
    eng_ttl: int = 0
    person: int = 0  # 1: the last key is the person index (erasure.py)
    # The list indexes (lua/_lx.lua lx_commit), built by lx_args: () = not listed.
    lx: tuple[str, ...] = ()
    lxp: tuple[str, ...] = ()  # a pruning commit's ranges (lx_args); () = not one
    lxt: int = 0  # 1: renew the index's TTL (LxKeep)
    # The funnel's groups (lua/_funnel.lua; its day hashes are the keys before the person's)
    fg: tuple[str, ...] = ()
    # Optimistic reads (models.Guard): (KEYS index, the first field as guessed, the fields).
    guard: tuple[tuple[int, str, tuple[str, ...]], ...] = ()


_TOP = 9_999_999_999_999  # lists.TOP: INV = TOP - created ms


class LxKeep:
    """When this worker's commits renew the list index's TTL (lua/_lx.lua ``lx_commit``):
    a renewal sets a retention and an eighth, so the next one is due an eighth of a retention
    later (this worker's monotonic clock, from before the script ran): ``lx`` outlives every
    commit by a retention without a PEXPIRE in each (~10k Valkey instructions a commit)."""

    def __init__(self) -> None:
        self._at = -math.inf  # when a renewal that ran was asked for

    def ask(self, arg: LuaPlan, lists: tuple[str, ...]) -> float:
        """Set the list indexes' arguments of ``arg`` (:func:`lx_args`, ``lxt`` 1: renew);
        returns the ask's time (0: no renewal) for :meth:`done`."""
        arg.lx, arg.lxp = lx_args(arg.id, arg.now, lists, arg.target, arg.queue)
        t = time.monotonic()
        due = bool(arg.lx) and not 0 <= t - self._at < arg.ret / 8000
        arg.lxt = int(due)
        return t if due else 0.0

    def done(self, asked: float, status: bytes) -> None:
        """After the commit: its renewal ran unless it wrote nothing."""
        if asked and status in (b"assigned", b"queued"):
            self._at = max(self._at, asked)


def lx_args(lead_id: str, now: int, values: tuple[str, ...], target: str,
            queue: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The commit's list-index arguments (router/state/lists.py for the format), built here
    so that Valkey, shared by every worker, only stores them (lua/_lx.lua ``lx_commit``).

    ``values``: status, territory, segment, grade, external id. Returns ``lx``: the lead
    hash's ``lx`` field up to the owner (INV, then the values, each followed by \\x1f), the
    member suffix (\\x1f INV \\x1f ID), the index values of an owner route's ``target`` and
    of ``queue``, then ZADD's arguments ("0", member, ...) for the values known before the
    pick; and ``lxp``: on a pruning commit (one in 16, by the id's last byte) the external
    id's range ("" = none) then the other ranges, else (). A value holding \\x1f is not
    indexed (stored as "")."""
    if not values:
        return (), ()
    inv = f"{_TOP - now:013d}"
    sfx = f"\x1f{inv}\x1f{lead_id}"
    vals = [v if "\x1f" not in v else "" for v in (*values, "", "", "", "")[:5]]
    ext = vals[4]
    out = [inv + "\x1f\x1f" + "".join(v + "\x1f" for v in vals), sfx,
           target if "\x1f" not in target else "", queue if "\x1f" not in queue else "",
           "0", f"a\x1f{sfx}\x1f{ext}" if ext else "a\x1f" + sfx]
    ranges = []
    for code, v in zip("stgrx", vals, strict=True):
        if v:
            out += ("0", f"{code}\x1f{v}{sfx}")
            if code != "x":
                ranges.append(f"{code}\x1f{v}")
    if lead_id.encode()[-1] % 16:
        return tuple(out), ()
    return tuple(out), (f"x\x1f{ext}" if ext else "", *ranges)


class PoolStatsArg(msgspec.Struct):
    pool: PoolPlan
    now: int
    ret: int


class _MemberReply(msgspec.Struct):
    rep: str
    weight: int
    in_hours: bool
    cap: int
    day: str
    eligible: bool
    reasons: list[str] | dict[str, Any]  # cjson encodes an empty table as {}
    status: str
    until: int
    today: int
    open: int
    assigned: int
    credit: int


class _PoolReply(msgspec.Struct):
    used: int
    last: str
    members: list[_MemberReply] | dict[str, Any]


_pool_reply = msgspec.json.Decoder(_PoolReply)


def parse_history(raw: bytes) -> HistoryEntry:
    # Lua stores `at` as epoch ms; convert it before the typed conversion.
    doc = msgspec.json.decode(raw)
    doc["at"] = from_ms(doc.get("at", 0))
    return msgspec.convert(doc, HistoryEntry)


def stored_lead(lead_id: str, fields: list[bytes], history: list[bytes]) -> StoredLead:
    """The lead hash (HGETALL's flat field, value list) and history (LRANGE) as a StoredLead."""
    f = {fields[i].decode(): fields[i + 1] for i in range(0, len(fields), 2)}

    def field(name: str) -> str | None:
        return text(f.get(name))

    owners = field("owners") or field("owner")  # before any reassignment: just the owner
    return StoredLead(
        lead_id=lead_id, decision=msgspec.Raw(f.get("decision") or b"null"),
        state=field("state") or "", route=field("route") or "",
        owner=field("owner"), pool=field("pool"), queue=field("queue"),
        strategy=field("strategy"), reason=field("reason") or "", rule=field("rule"),
        sla_policy=field("sla"), assigned_at=from_ms(f.get("assigned_at") or 0),
        updated_at=from_ms(f.get("updated_at") or f.get("assigned_at") or 0),
        due_at=from_ms(f["due_at"]) if f.get("due_at") else None,
        reassignments=int(f.get("reassignments") or 0),
        history=tuple(parse_history(raw) for raw in history),
        status=field("status"), sla_state=field("sla_state"),
        owners=tuple(owners.split(",")) if owners else (),
        route_step=field("route_step"), status_step=field("status_step"),
    )


def pool_stats_from_reply(pool: PoolPlan, raw: bytes) -> PoolStats:
    reply = _pool_reply.decode(raw)
    # cjson encodes an empty Lua table as {}, hence the isinstance checks.
    members = reply.members if isinstance(reply.members, list) else []
    return PoolStats(
        pool=pool.id, strategy=pool.strategy, day=pool.day, used_today=reply.used,
        pool_cap=None if pool.pool_cap < 0 else pool.pool_cap,
        last_assigned=reply.last or None,
        members=tuple(MemberStats(
            rep=m.rep, weight=m.weight, eligible=m.eligible,
            why_not=tuple(m.reasons) if isinstance(m.reasons, list) else (),
            status=m.status, until=from_ms(m.until) if m.until >= 0 else None,
            in_hours=m.in_hours, local_day=m.day, assigned_today=m.today,
            daily_cap=None if m.cap < 0 else m.cap, open=m.open,
            assigned_in_pool=m.assigned, credit=m.credit) for m in members),
    )
