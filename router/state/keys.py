"""The Redis key layout. Every key the service writes is built here, nowhere else.

All keys start with the configurable prefix (default ``lr:``) and carry a hash tag ``{...}`` that
groups the keys one entity's scripts touch, so a later Redis Cluster port knows its slots::

    {pool:ID}                hash    last, lastpos, cw:<rep>, n:<rep> (rotation)  long-lived
    {pool:ID}:day:YYYY-MM-DD str     leads from the pool that UTC day              TTL 2 d
    {rep:ID}                 hash    live state: status, until (ms), at (ms)       long-lived
    {rep:ID}:day:YYYY-MM-DD  str     leads to the rep that local day               TTL 2 d
    {rep:ID}:open            zset    open lead ids, score = assigned ms            TTL retention
    {account:DOMAIN}         hash    owner, at (ms)                                long-lived
    {lead:ID}                hash    decision JSON, owner, pool, queue, state...   TTL retention*
    {lead:ID}:history        list    JSON entries, newest last, LTRIMmed           TTL retention*
    {queue:NAME}             zset    lead ids waiting, score = queued ms           TTL retention
    {idem:SCOPE:KEY}         str     F|sha256|lead (in flight), D|... (done)       TTL 30 s / ret.*
    {sla}:due                zset    lead ids by SLA due ms (claimed: lease end)    TTL >= leads'
    {sla}:facts              stream  handoff/accept/breach/reassign/recycle facts  MAXLEN ~ N,
                                     (ids = event ms: the SLA report's range)      TTL retention
    {outbox}                 stream  events for sinks (a consumer group per sink)  MAXLEN ~ N
    {outbox}:dead            stream  events a sink failed to take (outbox.py)      MAXLEN ~ 10k
    {eng:PERSON}             hash    engagement: lead, seq, traits, e:<type> = times TTL 400 d
    {eng:PERSON}:seen        zset    messageIds seen (dedupe), newest 500           TTL 2 d
    {eng:alias:KIND:HASH}    str     the PERSON an anonymousId / userId stands for  TTL 400 d
    {rl:BUCKET}              str     rate-limit GCRA time (ms), ratelimit.py        TTL <= period
    {wh:SOURCE:ID}           str     webhook id seen (replay protection)            TTL 3 x tol.
    {person:SHA256}          set     lead ids of one email, for erasure             TTL retention*
    {apikeys}                hash    sha256(API key) → metadata (never the key)     long-lived
    {erasures}               stream  erasure log: when, kind, counts (no PII)       MAXLEN ~ 100k
    {leads}:arrivals         zset    lead ids by created ms (replay reads a window) TTL retention
    {leads}:arrivals:backfill
                             hash    done = leads added, or the SCAN cursor of the  long-lived
                                     one-off index of older leads (complete_backfill)
    {leads}:arrivals:backfill:lease
                             str     the process running that backfill              TTL 60 s

The lead hash also keeps what its decision was made from (``input``: msgpack of the lead as
decided, the snapshot, spam, source and the decision as committed) and ``pick``: the owner,
pool and queue as committed, then the facts the pool pick read (router/state/inputs.py).

    * retention + time until the SLA deadline: a lead outlives its deadline.

"Long-lived" keys are small, one per configured entity (rep, account, pool), and are what an
operator set on purpose; everything per lead expires. Zsets that hold lead ids are pruned by
score on every write, so even a rep who never accepts anything has a bounded open set (the
arrival index on one commit in 16: a cheaper commit, the same bound a few leads later).

Topology: **single-node Redis ≥ 7 or Valkey is the supported deployment for now** (a replica
for failover is fine). The scripts declare every key they touch in KEYS, but some cross slots:

* ``commit.lua`` touches the lead, its history, every candidate pool and rep of the overflow
  chain, the queue, the SLA schedule, the outbox and the idempotency keys. On Cluster it would
  have to be split: pick-and-count per pool slot (reps' daily counters would need to move under
  the pool tag, giving up caps shared across pools) then write-the-lead in the lead's slot.
* ``transition.lua`` touches the lead, the previous owner's open set, the SLA schedule and the
  outbox: on Cluster, outbox and SLA entries would move to per-lead-slot shards.
* ``escalate.lua`` / ``owner.lua`` (SLA, ``sla.py``) touch the lead, its history, the outbox,
  the SLA schedule and facts, the old owner's open set, two queues and, for a re-pick, the pools
  and reps of a chain (as the commit does); ``claim_due.lua`` only the SLA schedule.
* ``pool_stats.lua`` only reads, but across the pool's and its members' slots.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["DAY_TTL_S", "Keys"]

DAY_TTL_S = 2 * 86400  # a day counter outlives its day in every time zone (UTC-12 … UTC+14)


class Keys:
    """Key builder for one prefix. The per-entity methods are memoised: the same few hundred
    rep/pool keys are built for every lead, and building them is measurable at 10k leads/s."""

    def __init__(self, prefix: str = "lr:") -> None:
        self.prefix = prefix
        self.outbox = f"{prefix}{{outbox}}"
        self.outbox_dead = f"{prefix}{{outbox}}:dead"
        self.sla_due = f"{prefix}{{sla}}:due"
        self.sla_facts = f"{prefix}{{sla}}:facts"
        self.arrivals = f"{prefix}{{leads}}:arrivals"  # zset: lead id by created ms (replay)
        self.arrivals_backfill = f"{prefix}{{leads}}:arrivals:backfill"  # hash: done | cursor
        self.arrivals_lease = f"{prefix}{{leads}}:arrivals:backfill:lease"
        # Bound methods wrapped per instance, so two stores with different prefixes never share.
        self.pool = lru_cache(maxsize=1024)(self._pool)
        self.pool_day = lru_cache(maxsize=4096)(self._pool_day)
        self.rep = lru_cache(maxsize=4096)(self._rep)
        self.rep_day = lru_cache(maxsize=8192)(self._rep_day)
        self.rep_open = lru_cache(maxsize=4096)(self._rep_open)
        self.queue = lru_cache(maxsize=1024)(self._queue)

    def _pool(self, pool: str) -> str:
        return f"{self.prefix}{{pool:{pool}}}"

    def _pool_day(self, pool: str, day: str) -> str:
        return f"{self.prefix}{{pool:{pool}}}:day:{day}"

    def _rep(self, rep: str) -> str:
        return f"{self.prefix}{{rep:{rep}}}"

    def _rep_day(self, rep: str, day: str) -> str:
        return f"{self.prefix}{{rep:{rep}}}:day:{day}"

    def _rep_open(self, rep: str) -> str:
        return f"{self.prefix}{{rep:{rep}}}:open"

    def _queue(self, queue: str) -> str:
        return f"{self.prefix}{{queue:{queue}}}"

    def account(self, domain: str) -> str:
        # Domains are case-insensitive; normalising here means every caller agrees.
        return f"{self.prefix}{{account:{domain.strip().lower().rstrip('.')}}}"

    def lead(self, lead_id: str) -> str:
        return f"{self.prefix}{{lead:{lead_id}}}"

    def history(self, lead_id: str) -> str:
        return f"{self.prefix}{{lead:{lead_id}}}:history"

    def idempotency(self, scope: str, key: str) -> str:
        """``scope`` says whose key it is (``key:<source>`` for the Idempotency-Key header,
        ``ext:<source>`` for external ids) so two sources never collide."""
        return f"{self.prefix}{{idem:{scope}:{key}}}"

    # -- engagement (router/state/engagement.py: layout, bounds) -----------------------------

    def engagement(self, person: str) -> str:
        """hash: one person's engagement (``e:<email hash>``, ``a:``/``u:<id hash>``,
        ``l:<lead id>``): per event type the recent times, a decayed remainder, the lead."""
        return f"{self.prefix}{{eng:{person}}}"

    def engagement_seen(self, person: str) -> str:
        """zset: the person's recent messageIds (dedupe), bounded by count and age."""
        return f"{self.prefix}{{eng:{person}}}:seen"

    def engagement_alias(self, alias: str) -> str:
        """str: the person an anonymousId / userId (``a:``/``u:<hash>``) was identified as."""
        return f"{self.prefix}{{eng:alias:{alias}}}"

    # -- intake (router/state/ratelimit.py, apikeys.py, replay.py, erasure.py) ----------------

    def ratelimit(self, bucket: str) -> str:
        """GCRA state (str, ms): ``form:<id>:ip:<addr>``, ``key:<key id>``; TTL <= period."""
        return f"{self.prefix}{{rl:{bucket}}}"

    def webhook(self, source: str, message_id: str) -> str:
        """A delivered webhook id (replay protection); TTL a few tolerance windows."""
        return f"{self.prefix}{{wh:{source}:{message_id}}}"

    def person(self, email_hash: str) -> str:
        """set: the lead ids of one person (sha256 of the email), for erasure; TTL retention."""
        return f"{self.prefix}{{person:{email_hash}}}"

    @property
    def api_keys(self) -> str:
        """hash: sha256(key) → JSON metadata (id, source, scopes, expiry); never the key."""
        return f"{self.prefix}{{apikeys}}"

    @property
    def erasures(self) -> str:
        """stream: one entry per erasure (when, what kind, how many records); no personal data."""
        return f"{self.prefix}{{erasures}}"
