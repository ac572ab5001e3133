"""The list APIs' logic: leads by filters, queues, reps, pools, accounts (issue 18).

Reads the list indexes the commit and transition scripts keep (router/state/lists.py: one
lex-ordered zset, ``lx``), never SCAN. Results are the typed structs of
:mod:`router.services.lists_model`; the console renders the same.

Pages: ``limit`` 1..500 (default 50); ``cursor`` the ``next_cursor`` of the page before
(opaque, HMAC-signed per deployment, bound to the list and filters it was made for:
router/services/_lists_cursor.py). A leads page walks ONE index range — the filter's, or
with several filters the smallest of theirs (ZLEXCOUNT) — and checks the others by
membership (one ZMSCORE a batch: the entry the lead would have in each other range): it
walks at most :data:`SCAN_BUDGET` entries and reads lead hashes only for the leads it
answers (at most ``limit``), then answers what it found with a cursor to go on. A page
stays stable while leads arrive: new leads sort before the cursor.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import msgspec

from router.engine.availability import pool_plan
from router.engine.ruleset import PoolSpec
from router.engine.schema import STATUSES
from router.services import _lists_cursor as cur
from router.services._backfill import run_later
from router.services._lists_accounts import parse_accounts
from router.services._lists_rows import FILTERS, age, in_queue, matches, next_working_hours, row
from router.services.clock import Clock
from router.services.directory import DirectoryService
from router.services.lists_model import (
    SLA_STATES,
    AccountPage,
    AccountRow,
    BadCursor,
    BadFilter,
    ImportResult,
    LeadFilter,
    LeadPage,
    LeadRow,
    ListsOff,
    PoolView,
    QueueItem,
    QueuePage,
    QueueSummary,
    RepSummary,
)
from router.services.rules import RulesManager
from router.state import lists as lx
from router.state.erasure import person_hash
from router.state.models import from_ms, to_ms
from router.state.store import Store

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "SCAN_BUDGET", "ListService", "next_working_hours"]

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
SCAN_BUDGET = 5000  # index entries one leads page walks at most (lead hashes: <= limit)

log = logging.getLogger(__name__)


class ListService:
    """Lists over the Redis indexes; every method reads, except :meth:`import_accounts`."""

    def __init__(self, *, store: Store, rules: RulesManager, directory: DirectoryService,
                 clock: Clock, enabled: bool = True) -> None:
        self.store = store
        self.enabled = enabled  # LEADROUTER_LIST_INDEXES: else the lead lists raise ListsOff
        self.rules = rules
        self.directory = directory
        self.clock = clock
        self._key: bytes | None = None

    async def _cursor_key(self) -> bytes:
        if self._key is None:
            self._key = await lx.secret(self.store, os.urandom(32))
        return self._key

    async def backfill_at_start(self, *, delay: float = 5.0) -> None:
        """Start-up (router/app/application.py): after ``delay`` s, index the account owners
        written before the accounts index, once per deployment. Errors are logged only."""
        await run_later(lambda: lx.backfill_accounts(self.store), delay=delay, log=log,
                        name="accounts index", resume="it runs again at the next start",
                        done="account(s) indexed")

    # -- leads -----------------------------------------------------------------------------

    def allowed(self) -> dict[str, tuple[str, ...]]:
        """The values the enum-like filters accept now: status, grade (from the rules),
        sla_state. Any other value of those is a :class:`BadFilter`."""
        grades = tuple(g for g, _ in self.rules.current.grades)
        return {"status": STATUSES, "grade": grades, "sla_state": SLA_STATES}

    def _check(self, where: LeadFilter, limit: int) -> None:
        self._on()
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit={limit} is outside 1..{MAX_LIMIT}")
        for name, allowed in self.allowed().items():
            value = getattr(where, name)
            if value is not None and value not in allowed:
                raise BadFilter(name, value, allowed)
        if where.since and where.until and where.since > where.until:
            raise BadFilter("since", where.since.isoformat(),
                            (f"a time at or before until ({where.until.isoformat()})",))

    async def leads(self, where: LeadFilter, *, limit: int = DEFAULT_LIMIT,
                    cursor: str | None = None) -> LeadPage:
        """Leads matching every filter of ``where``, newest first. BadFilter (unknown
        status / grade / sla_state, since after until), BadCursor (forged, garbled, or made
        for other filters), ValueError (limit outside 1..500)."""
        self._check(where, limit)
        horizon = to_ms(self.clock()) - self.store.retention_ms
        since = max(to_ms(where.since), horizon) if where.since else horizon
        until = to_ms(where.until) if where.until else None
        filters = [(lx.CODES[name], getattr(where, name)) for name in FILTERS
                   if getattr(where, name) is not None]
        email = where.q is not None and "@" in where.q
        if where.q is not None and not email:
            filters.append((lx.CODES["external_id"], where.q))
        bound = cur.digest("leads", msgspec.to_builtins(where))
        key = await self._cursor_key()
        after: str | None = None
        if cursor is not None:
            after = cur.open_cursor(key, cursor, "leads", bound)[0]
            if not isinstance(after, str):
                raise BadCursor("the cursor is garbled — start again without `cursor`")
        if email:
            return await self._by_person(where.q or "", filters, since, until, after, limit, key,
                                         bound)
        drive, share = await self._drive(filters, since, until, after)
        prefix = f"{drive[0]}\x1f{drive[1]}\x1f"
        if after is not None and not after.startswith(prefix):
            raise BadCursor("the cursor was made for other filters — start again without it")
        items: list[LeadRow] = []
        scanned, exhausted, ahead = 0, False, 0
        others = [f for f in filters if f != drive]
        while len(items) < limit and scanned < SCAN_BUDGET:
            want = limit - len(items)
            if others:  # read ahead by the expected share of matches, within the budget
                ahead = max(int(want / max(share, 0.001) * 1.5) + 16, 2 * ahead, 64)
                want = min(SCAN_BUDGET - scanned, ahead)
            members = await lx.walk(self.store, drive[0], drive[1], since_ms=since,
                                    until_ms=until, after=after, count=want)
            keep = await self._others_hold(members, others)
            found = iter(await lx.read_indexed(
                self.store, [lx.member_id(m) for m, ok in zip(members, keep,
                                                                    strict=True) if ok]))
            early = False
            for i, (member, ok) in enumerate(zip(members, keep, strict=True)):
                scanned += 1
                after = member
                lead = next(found) if ok else None
                if lead is not None and matches(lead, filters):
                    items.append(row(lead))
                    if len(items) == limit:
                        early = i < len(members) - 1
                        break
            if len(members) < want:  # the range ends here
                exhausted = not early
                break
        more = not exhausted and after is not None
        return LeadPage(items=items, scanned=scanned,
                        next_cursor=cur.seal(key, "leads", bound, [after]) if more else None)

    async def _others_hold(self, members: list[str],
                           others: list[tuple[str, str]]) -> list[bool]:
        """Per walked entry, whether the lead is also in every other filter's range (one
        ZMSCORE for the batch: no lead hash is read for those that are not)."""
        if not others or not members:
            return [True] * len(members)
        tails = [m.split("\x1f", 2)[2] for m in members]  # INV \x1f ID
        hits = await lx.present(self.store, [f"{c}\x1f{v}\x1f{t}" for t in tails
                                             for c, v in others])
        n = len(others)
        return [all(hits[i * n:(i + 1) * n]) for i in range(len(members))]

    async def _drive(self, filters: list[tuple[str, str]], since: int, until: int | None,
                     after: str | None) -> tuple[tuple[str, str], float]:
        """The index a page walks — the cursor's, else the smallest of the filters' — and
        the share of its entries expected to match the others (as if independent: how far
        to read ahead)."""
        if len(filters) <= 1:
            return (filters[0] if filters else ("a", "")), 1.0
        counts = await lx.count_ranges(self.store, [*filters, ("a", "")], since_ms=since,
                                       until_ms=until)
        total = max(counts[-1], 1)
        pick = counts.index(min(counts[:-1]))
        if after is not None:
            pick = next((i for i, (code, value) in enumerate(filters)
                         if after.startswith(f"{code}\x1f{value}\x1f")), pick)
        share = 1.0
        for i, n in enumerate(counts[:-1]):
            if i != pick:
                share *= n / total
        return filters[pick], share

    async def _by_person(self, email: str, filters: list[tuple[str, str]], since: int,
                         until: int | None, after: str | None, limit: int, key: bytes,
                         bound: bytes) -> LeadPage:
        """``q`` with an ``@``: the person's leads (the erasure index) and the leads with it
        as their external id, then the filters."""
        ids = set(await lx.leads_of(self.store, person_hash(email)))
        ids |= {lx.member_id(m) for m in await lx.walk(
            self.store, "x", email, since_ms=since, until_ms=until, after=None,
            count=SCAN_BUDGET)}
        found = [x for x in await lx.read_indexed(self.store, sorted(ids)[:SCAN_BUDGET]) if x]
        rows = sorted((lx.inv(x.created_ms) + "\x1f" + x.id, x) for x in found
                      if matches(x, filters) and x.created_ms >= since
                      and (until is None or x.created_ms <= until))
        rows = [r for r in rows if after is None or r[0] > after]
        page = rows[:limit]
        more = len(rows) > limit
        return LeadPage(items=[row(x) for _, x in page], scanned=len(found),
                        next_cursor=cur.seal(key, "leads", bound, [page[-1][0]])
                        if more else None)

    # -- queues ----------------------------------------------------------------------------

    def _on(self) -> None:
        if not self.enabled:
            raise ListsOff("the list indexes are off (LEADROUTER_LIST_INDEXES=false): set it "
                           "to true; leads routed from then on are listed")

    def _queue_names(self) -> set[str]:
        ruleset = self.rules.current
        names = {"unassigned"}
        names |= {r.target for r in ruleset.assignment.rules
                  if r.target_kind == "queue" and r.target}
        names |= {p.overflow for p in ruleset.pools.values() if p.overflow_kind == "queue"}
        return names

    async def queues(self) -> list[QueueSummary]:
        """Every queue of the rules and every queue a lead waits in: size, oldest, its age."""
        self._on()
        now = self.clock()
        horizon = to_ms(now) - self.store.retention_ms
        names = sorted(self._queue_names() | set(await lx.ranges_in_use(self.store, "q")))
        sizes = await lx.count_ranges(self.store, [("q", n) for n in names], since_ms=horizon,
                                      until_ms=None)
        heads = await lx.queue_entries(self.store, names, lo_ms=horizon, count=8)
        flat = [lead_id for head in heads for lead_id, _ in head]
        live = dict(zip(flat, await lx.read_indexed(self.store, flat), strict=True))
        out = []
        for name, size, head in zip(names, sizes, heads, strict=True):
            oldest = next((ms for lead_id, ms in head if in_queue(live.get(lead_id), name)),
                          None)
            at = from_ms(oldest) if oldest is not None else None
            out.append(QueueSummary(name=name, size=size, oldest_at=at,
                                    oldest_age_seconds=age(now, at)))
        return out

    async def queue(self, name: str, *, limit: int = DEFAULT_LIMIT,
                    cursor: str | None = None) -> QueuePage:
        """What waits in ``name``, oldest first, with each lead's age in the queue."""
        self._on()
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit={limit} is outside 1..{MAX_LIMIT}")
        now = self.clock()
        horizon = to_ms(now) - self.store.retention_ms
        key, bound = await self._cursor_key(), cur.digest("queue", name)
        last: tuple[int, str] | None = None
        if cursor is not None:
            pos = cur.open_cursor(key, cursor, "queue", bound)
            if len(pos) != 2 or not isinstance(pos[0], int) or not isinstance(pos[1], str):
                raise BadCursor("the cursor is garbled — start again without `cursor`")
            last = (pos[0], pos[1])
        size = (await lx.count_ranges(self.store, [("q", name)], since_ms=horizon,
                                      until_ms=None))[0]
        items: list[QueueItem] = []
        scanned, exhausted, want = 0, False, limit + 64
        while len(items) < limit and scanned < SCAN_BUDGET:
            lo = max(horizon, last[0]) if last else horizon
            raw = (await lx.queue_entries(self.store, [name], lo_ms=lo, count=want))[0]
            entries = [e for e in raw if last is None or (e[1], e[0]) > (last[0], last[1])]
            found = await lx.read_indexed(self.store, [e[0] for e in entries])
            early = False
            for i, ((lead_id, ms), lead) in enumerate(zip(entries, found, strict=True)):
                scanned += 1
                last = (ms, lead_id)
                if lead is not None and in_queue(lead, name):
                    at = from_ms(ms)
                    items.append(QueueItem(lead=row(lead), queued_at=at,
                                           age_seconds=age(now, at) or 0.0))
                    if len(items) == limit:
                        early = i < len(entries) - 1
                        break
            if len(raw) < want or (not entries and want >= SCAN_BUDGET):
                exhausted = not early
                break
            if not entries:  # a run of entries with the cursor's own time: read further
                want = min(2 * want, SCAN_BUDGET)
        more = not exhausted and last is not None
        return QueuePage(queue=name, size=size, items=items,
                         next_cursor=cur.seal(key, "queue", bound, list(last))
                         if more and last else None)

    # -- reps and pools --------------------------------------------------------------------

    async def reps(self) -> list[RepSummary]:
        """Every rep of the rules with its live status, open leads, today's count against its
        cap and its next working hours."""
        ruleset, now = self.rules.current, self.clock()
        everyone = PoolSpec(id="*", strategy="round_robin", daily_cap=None,
                            pool_daily_cap=None, working_hours=True, overflow_kind="queue",
                            overflow="", members=tuple((r, s.weight)
                                                       for r, s in sorted(ruleset.reps.items())))
        stats = await self.store.pool_stats(pool_plan(everyone, ruleset.reps, now), now=now)
        pools_of: dict[str, list[str]] = {}
        for pool in ruleset.pools.values():
            for rep, _ in pool.members:
                pools_of.setdefault(rep, []).append(pool.id)
        out = []
        for m in stats.members:
            spec = ruleset.reps[m.rep]
            available = m.status in ("", "available") or (
                m.until is not None and m.until <= now)
            out.append(RepSummary(
                id=m.rep, name=spec.name, timezone=spec.timezone,
                status=m.status or "available", until=m.until, available_now=available,
                in_hours_now=m.in_hours, why_not=m.why_not, open_leads=m.open,
                today=m.assigned_today, daily_cap=spec.daily_cap,
                next_working_hours=None if m.in_hours else next_working_hours(spec, now),
                pools=tuple(sorted(pools_of.get(m.rep, ())))))
        return out

    async def rep_leads(self, rep: str, *, limit: int = DEFAULT_LIMIT,
                        cursor: str | None = None) -> LeadPage:
        """The leads ``rep`` owns now, newest first. UnknownRep if not in the rules."""
        self.directory.check_rep(rep)
        return await self.leads(LeadFilter(owner=rep), limit=limit, cursor=cursor)

    async def pools(self) -> list[PoolView]:
        """Every pool of the rules: members, eligibility now and why not, today's use."""
        ruleset = self.rules.current
        out = []
        for pool_id in sorted(ruleset.pools):
            s = await self.directory.pool(pool_id)
            out.append(PoolView(
                id=s.pool, strategy=s.strategy, day=s.day, used_today=s.used_today,
                pool_cap=s.pool_cap, last_assigned=s.last_assigned, members=s.members,
                distribution={m.rep: m.assigned_today for m in s.members},
                eligible_now=sum(1 for m in s.members if m.eligible)))
        return out

    # -- accounts --------------------------------------------------------------------------

    async def accounts(self, *, owner: str | None = None, limit: int = DEFAULT_LIMIT,
                       cursor: str | None = None) -> AccountPage:
        """Account owners in domain order, optionally only ``owner``'s."""
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit={limit} is outside 1..{MAX_LIMIT}")
        key, bound = await self._cursor_key(), cur.digest("accounts", owner)
        after = None
        if cursor is not None:
            pos = cur.open_cursor(key, cursor, "accounts", bound)
            if len(pos) != 1 or not isinstance(pos[0], str):
                raise BadCursor("the cursor is garbled — start again without `cursor`")
            after = pos[0]
        rows = await lx.accounts_page(self.store, owner=owner, after=after, count=limit + 1)
        page = rows[:limit]
        more = len(rows) > limit
        return AccountPage(items=[AccountRow(domain=d, owner=o) for d, o in page],
                           next_cursor=cur.seal(key, "accounts", bound, [page[-1][0]])
                           if more else None)

    def parse_accounts(self, body: bytes, content_type: str) -> list[AccountRow]:
        """CSV (``text/csv``: header ``domain,owner``) or JSON lines
        (``application/x-ndjson`` / ``application/jsonl``: ``{"domain", "owner"}``) → rows.
        ImportRejected listing every bad line (bad domain, unknown rep, duplicate domain)."""
        return parse_accounts(body, content_type, self.rules.current.reps)

    async def import_accounts(self, rows: Sequence[AccountRow]) -> ImportResult:
        """Write every row (all or nothing: rows are checked by :meth:`parse_accounts`).
        The API records it in the audit log (router/api/lists.py)."""
        changed = await lx.put_accounts(self.store, [(r.domain, r.owner) for r in rows],
                                        now=self.clock())
        return ImportResult(imported=changed, lines=len(rows))
