"""The commit script's arguments: how a :class:`CommitPlan` becomes the KEYS and ARGV[1]
(:class:`LuaPlan`) of ``lua/commit.lua``, and a pool's keys in the layout ``lua/_pick.lua``
expects.

What changes with the script's calling convention changes here: ``commit.lua`` reads its
KEYS by position (lead, history, the fixed keys, the claims, an owner route's counters, then
the pools', the guarded keys, the person's engagement hash, the funnel's day hash and the
person index) and finds the variable ones by the indexes the plan carries (``eng``,
``guard``, ``person``). Keys go out in RESP form (:class:`PackedKeys`); what repeats from lead
to lead (a plan's pool keys, a queue's fixed keys) is packed once per worker. The other
scripts that pick (``sla.py``, the re-qualification, ``pool_stats``) take the same pool keys
through ``Store.pool_keys``. Sending the commit and reading its reply: ``store.py``.
"""

from __future__ import annotations

import datetime as dt

from router.engine.availability import PoolPlan
from router.state.codec import LuaPlan
from router.state.keys import Keys
from router.state.models import CommitPlan, to_ms
from router.state.scripts import PackedKeys, pack_keys
from router.state.wire import bulk

__all__ = ["CommitArgs"]

_OWNER_KINDS = ("owner", "account_owner")


class CommitArgs:
    """One per store: a plan's KEYS and ARGV[1] for the commit, with the store's limits
    (retention, idempotency, history, outbox and SLA facts lengths) and its packed keys."""

    __slots__ = ("_fixed_by_queue", "_pool_keys_by_id", "fmax", "hmax", "idem", "keys", "omax",
                 "ret")

    def __init__(self, keys: Keys, *, retention_ms: int, idempotency_ms: int, history_max: int,
                 outbox_maxlen: int, sla_facts_maxlen: int) -> None:
        self.keys = keys
        self.ret, self.idem = retention_ms, idempotency_ms
        self.hmax, self.omax, self.fmax = history_max, outbox_maxlen, sla_facts_maxlen
        self._pool_keys_by_id: dict[int, tuple[PoolPlan, PackedKeys]] = {}
        self._fixed_by_queue: dict[str, bytes] = {}

    def pool_keys(self, plan: PoolPlan) -> PackedKeys:
        """A pool's keys in the layout ``_pick.lua`` expects (packed once per plan)."""
        # Memo by identity: PlanCache hands out the same plan objects all minute long, and
        # hashing a plan (nested tuples) costs more than the lookup saves. The plan is kept in
        # the entry so its id cannot be reused while cached.
        hit = self._pool_keys_by_id.get(id(plan))
        if hit is not None and hit[0] is plan:
            return hit[1]
        if len(self._pool_keys_by_id) > 1024:
            self._pool_keys_by_id.clear()
        keys = pack_keys(self._pool_keys_uncached(plan))
        self._pool_keys_by_id[id(plan)] = (plan, keys)
        return keys

    def _pool_keys_uncached(self, plan: PoolPlan) -> tuple[str, ...]:
        k = self.keys
        out = [k.pool(plan.id), k.pool_day(plan.id, plan.day)]
        for m in plan.members:
            out += (k.rep(m.rep), k.rep_day(m.rep, m.day), k.rep_open(m.rep))
        return tuple(out)

    def _packed_fixed(self, queue: str) -> bytes:
        """The commit's KEYS[3..9] (outbox, SLA schedule, ``queue``, SLA facts, arrival
        index, list indexes) in RESP form."""
        packed = self._fixed_by_queue.get(queue)
        if packed is None:
            if len(self._fixed_by_queue) > 1024:
                self._fixed_by_queue.clear()
            k = self.keys
            packed = self._fixed_by_queue[queue] = b"".join(
                bulk(key) for key in (k.outbox, k.sla_due, k.queue(queue), k.sla_facts,
                                      k.arrivals, k.lists, k.lists_vals))
        return packed

    def pack(self, plan: CommitPlan) -> tuple[list[PackedKeys], LuaPlan]:
        """The commit's KEYS (RESP parts, in order) and ARGV[1] for ``plan``; the list
        indexes' fields of the :class:`LuaPlan` are left to ``codec.LxKeep.ask``."""
        k, lead_id = self.keys, plan.lead_id
        now = to_ms(plan.now)
        owner_kind = plan.kind in _OWNER_KINDS
        if owner_kind and not plan.owner:
            raise ValueError(f"a {plan.kind} route needs plan.owner")
        # KEYS: lead, history, outbox, SLA schedule, queue, SLA facts, arrivals, lx, lx:vals,
        # the claims, (owner routes) the owner's day counter and open set; then the pools'
        # keys, the person's engagement hash and the person index (RESP fragments: pack_keys).
        own = [bulk(k.lead(lead_id)), bulk(k.history(lead_id)), self._packed_fixed(plan.queue)]
        own += [bulk(c.redis_key) for c in plan.claims]
        n = 9 + len(plan.claims)
        if owner_kind:
            owner = plan.owner or ""
            own += (bulk(k.rep_day(owner, plan.owner_day or plan.now.astimezone(dt.UTC).date()
                                   .isoformat())), bulk(k.rep_open(owner)))
            n += 2
        keys = [PackedKeys(n, b"".join(own))]
        if plan.kind == "pool":
            for pool in plan.chain:
                packed = self.pool_keys(pool)
                keys.append(packed)
                n += packed.n
        guard = []
        for g in plan.guards:
            keys.append(PackedKeys(1, bulk(g.key)))
            n += 1
            # As text: Valkey's cmsgpack takes no MessagePack bin. Versions are UTF-8 (digits,
            # rep ids); anything else would only make the guess stale.
            guard.append((n, (g.seen or b"").decode(errors="replace"), g.fields))
        link, eng = plan.engagement, 0
        if link is not None:
            eng = n + 1
            keys.append(PackedKeys(1, bulk(k.engagement(link.person))))
        keys += [pack_keys((k.funnel_routed(plan.now),))] if plan.funnel else []  # _funnel.lua
        if plan.person:
            keys.append(PackedKeys(1, bulk(k.person(plan.person))))
        arg = LuaPlan(
            id=lead_id, now=now, ret=self.ret, idem=self.idem,
            kind=plan.kind,
            target=plan.owner or "", why=plan.reason, rule=plan.rule or "",
            sla=plan.sla_policy or "", queue=plan.queue,
            due=to_ms(plan.due_at) if plan.due_at else -1,
            dueby={rep: to_ms(when) for rep, when in plan.due_by_rep.items()},
            pools=plan.chain if plan.kind == "pool" else (),
            claims=tuple((c.marker, f"D|{c.fingerprint}|{lead_id}") for c in plan.claims),
            eng=eng, eng_seq=link.seq if link else 0, eng_dom=link.dom if link else "",
            eng_ttl=link.ttl_ms if link else 0,
            hmax=self.hmax, omax=self.omax, fmax=self.fmax,
            person=1 if plan.person else 0, guard=tuple(guard), fg=plan.funnel,
        )
        return keys, arg
