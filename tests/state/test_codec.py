"""Decoding Redis replies into the public Structs (router/state/codec.py): the lead hash and
its history, pool statistics as the Lua script encodes them (cjson's empty tables included)."""

from __future__ import annotations

import datetime as dt

import msgspec

from router.engine.availability import MemberPlan, PoolPlan
from router.state.codec import (
    LuaPlan,
    parse_history,
    pool_stats_from_reply,
    stored_lead,
    text,
)
from router.state.models import HistoryEntry

T = 1772470800000  # 2026-03-02T17:00:00Z in ms
AT = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
POOL = PoolPlan(id="p", strategy="weighted_round_robin", pool_cap=-1, day="2026-03-02",
                members=(MemberPlan("a", 2, True, "2026-03-02", 10),))


def test_text() -> None:
    assert text(b"r1") == "r1"
    assert text(None) is None and text(b"") is None


def test_history_entries_come_back_with_datetimes() -> None:
    entry = parse_history(b'{"event": "created", "at": %d, "owner": "r1", "data": {"n": 1}}'
                          % T)
    assert entry == HistoryEntry(event="created", at=AT, owner="r1", data={"n": 1})
    assert parse_history(b'{"event": "queued"}').at == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def test_a_stored_lead_from_its_hash_and_history() -> None:
    fields = [b"decision", b'{"score": 42}', b"state", b"assigned", b"route", b"pool",
              b"owner", b"r2", b"pool", b"p", b"strategy", b"round_robin", b"reason", b"turn",
              b"rule", b"ent", b"sla", b"hot", b"assigned_at", str(T).encode(),
              b"due_at", str(T + 600_000).encode(), b"reassignments", b"1",
              b"owners", b"r1,r2", b"sla_state", b"pending"]
    history = [b'{"event": "created", "at": %d}' % T]
    lead = stored_lead("L1", fields, history)
    assert msgspec.json.decode(msgspec.json.encode(lead.decision)) == {"score": 42}
    assert (lead.lead_id, lead.state, lead.route, lead.owner, lead.pool, lead.queue) == \
        ("L1", "assigned", "pool", "r2", "p", None)
    assert (lead.strategy, lead.reason, lead.rule, lead.sla_policy) == \
        ("round_robin", "turn", "ent", "hot")
    assert lead.assigned_at == AT and lead.updated_at == AT  # no update yet: the assignment
    assert lead.due_at == AT + dt.timedelta(minutes=10)
    assert (lead.reassignments, lead.owners, lead.sla_state) == (1, ("r1", "r2"), "pending")
    assert lead.history == (HistoryEntry(event="created", at=AT),)


def test_a_lead_never_reassigned_lists_its_owner_and_missing_fields_have_defaults() -> None:
    lead = stored_lead("L2", [b"owner", b"r1", b"updated_at", str(T).encode()], [])
    assert lead.owners == ("r1",) and lead.updated_at == AT
    assert (lead.state, lead.reason, lead.due_at, lead.reassignments, lead.history) == \
        ("", "", None, 0, ())
    assert msgspec.json.encode(lead.decision) == b"null"
    assert stored_lead("L3", [], []).owners == ()


def test_pool_stats_from_the_scripts_reply() -> None:
    reply = msgspec.json.encode({
        "used": 3, "last": "a", "members": [{
            "rep": "a", "weight": 2, "in_hours": True, "cap": 10, "day": "2026-03-02",
            "eligible": False, "reasons": ["away", "at daily cap"], "status": "away",
            "until": T, "today": 10, "open": 4, "assigned": 7, "credit": -1}]})
    stats = pool_stats_from_reply(POOL, reply)
    assert (stats.pool, stats.strategy, stats.day, stats.used_today, stats.pool_cap,
            stats.last_assigned) == ("p", "weighted_round_robin", "2026-03-02", 3, None, "a")
    [m] = stats.members
    assert (m.rep, m.weight, m.eligible, m.why_not, m.status, m.until) == \
        ("a", 2, False, ("away", "at daily cap"), "away", AT)
    assert (m.in_hours, m.local_day, m.assigned_today, m.daily_cap, m.open,
            m.assigned_in_pool, m.credit) == (True, "2026-03-02", 10, 10, 4, 7, -1)


def test_pool_stats_with_cjsons_empty_tables() -> None:
    # cjson encodes an empty Lua table as {}: no members, no reasons; -1 means "none"
    capped = msgspec.structs.replace(POOL, pool_cap=50)
    stats = pool_stats_from_reply(capped, b'{"used": 0, "last": "", "members": {}}')
    assert (stats.members, stats.last_assigned, stats.pool_cap) == ((), None, 50)
    member = {"rep": "a", "weight": 1, "in_hours": True, "cap": -1, "day": "2026-03-02",
              "eligible": True, "reasons": {}, "status": "available", "until": -1,
              "today": 0, "open": 0, "assigned": 0, "credit": 0}
    raw = msgspec.json.encode({"used": 0, "last": "", "members": [member]})
    [m] = pool_stats_from_reply(POOL, raw).members
    assert (m.why_not, m.until, m.daily_cap) == ((), None, None)


def test_the_commit_argument_keeps_the_names_the_lua_libraries_read() -> None:
    plan = LuaPlan(id="L1", now=T, ret=1, hmax=2, omax=3, fmax=4, kind="pool", target="p",
                   idem=5, why="", rule="r", sla="", queue="q", due=-1, dueby={}, pools=(),
                   claims=())
    doc = msgspec.msgpack.decode(msgspec.msgpack.Encoder().encode(plan))
    for name in ("id", "now", "ret", "hmax", "omax", "fmax", "kind", "target", "idem",
                 "queue", "dueby", "pools", "claims", "eng", "person", "guard"):
        assert name in doc, name
    assert None not in doc.values()  # a nil would leave a hole in a Lua table
