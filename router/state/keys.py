"""The Redis key layout. Every key the service writes is built here, nowhere else.

All keys of one deployment start with the configurable prefix (default ``lr:``) followed by
ONE hash tag derived from it — the prefix without its trailing ``:`` (``lr:`` → ``{lr}``) —
so every key of a deployment hashes to the same Redis Cluster slot and every Lua script is
single-slot and atomic on a cluster; deployments with other prefixes (``acme:`` →
``acme:{acme}:``) land on other slots, spread over the shards. Every key is ``Keys.base``
(``lr:{lr}:`` by default) followed by::

    pool:ID                hash    last, lastpos, cw:<rep>, n:<rep> (rotation)     long-lived
    pool:ID:day:YYYY-MM-DD str     leads from the pool that UTC day                TTL 2 d
    rep:ID                 hash    live state: status, until (ms), at (ms)         long-lived
    rep:ID:day:YYYY-MM-DD  str     leads to the rep that local day                 TTL 2 d
    rep:ID:open            zset    open lead ids, score = assigned ms              TTL retention
    account:DOMAIN         hash    owner, at (ms)                                  long-lived
    lead:ID                hash    decision JSON, owner, pool, queue, state...     TTL retention*
    lead:ID:history        list    JSON entries, newest last, LTRIMmed             TTL retention*
    queue:NAME             zset    lead ids waiting, score = queued ms             TTL retention
    idem:SCOPE:KEY         str     F|sha256|lead (in flight), D|... (done)         TTL 30 s / ret.*
    sla:due                zset    lead ids by SLA due ms (claimed: lease end)     TTL >= leads'
    sla:facts              stream  handoff/accept/breach/reassign/recycle facts    MAXLEN ~ N,
                                   (ids = event ms: the SLA report's range)        TTL retention
    outbox                 stream  events for sinks (a consumer group per sink)    MAXLEN ~ N
    outbox:dead            stream  events a sink failed to take (outbox.py)        MAXLEN ~ 10k
    link:ID                str     a signed action link in use / spent             TTL <= link
                                   (action_links.py: single use)                   expiry
    eng:PERSON             hash    engagement: lead, seq, traits, e:<type> = times TTL 400 d
    eng:PERSON:seen        zset    messageIds seen (dedupe), newest 500            TTL 2 d
    eng:alias:KIND:HASH    str     the PERSON an anonymousId / userId stands for   TTL 400 d
    rl:BUCKET              str     rate-limit GCRA time (ms), ratelimit.py         TTL <= period
    wh:SOURCE:ID           str     webhook id seen (replay protection)             TTL 3 x tol.
    person:SHA256          set     lead ids of one email, for erasure              TTL retention*
    apikeys                hash    sha256(API key) → metadata (never the key)      long-lived
    erasures               stream  erasure log: when, kind, counts (no PII)        MAXLEN ~ 100k
    audit                  stream  who changed what (state/audit.py; ids = ms)     MINID retention
    audit:claim:HASH       str     the one worker that records a file-change       TTL 1 d
                                   rules reload (every worker reloads it)
    rules:generation       str     bumped on every rules reload (rules_sync.py)    long-lived
    funnel:DIM:YYYY-MM-DD  hash    funnel stages / velocity of leads routed that   TTL day +
                                   day, per group of DIM (router/state/funnel.py)  retention
    funnel:routed:YYYY-MM-DD hash  leads routed that day per combination of groups + 2 d
                                   (folded into the DIM hashes once the day is past)
    shadow:NAME            (any)   shadow rules versions and periods (shadow.py)   TTL setting
    ui:session:SHA256      str     a console session (JSON: role, who, CSRF token) TTL session
    leads:arrivals         zset    lead ids by created ms (replay reads a window)  TTL retention
    leads:arrivals:backfill
                           hash    done = leads added, or the SCAN cursor of the   long-lived
                                   one-off index of older leads (complete_backfill)
    leads:arrivals:backfill:lease
                           str     the process running that backfill               TTL 60 s
    lx                     zset    the list indexes, score 0, members in byte      TTL retention
                                   order CODE\x1fVALUE\x1fINV\x1fID (lists.py)
    lx:vals                set     the CODE\x1fVALUE ranges of lx (pruning)        TTL retention
    lx:secret              str     HMAC key of list cursors (random, set once)     long-lived
    accounts               zset    d\x1fDOMAIN and o\x1fOWNER\x1fDOMAIN (lex)        long-lived
    accounts:backfill      str     set once older account hashes were indexed      long-lived

The lead hash also keeps what its decision was made from (``input``: msgpack of the lead as
decided, the snapshot, spam, source and the decision as committed) and ``pick``: the owner,
pool and queue as committed, then the facts the pool pick read (router/state/inputs.py).

    * retention + time until the SLA deadline: a lead outlives its deadline.

"Long-lived" keys are small, one per configured entity (rep, account, pool), and are what an
operator set on purpose; everything per lead expires. Zsets that hold lead ids are pruned by
score on every write, so even a rep who never accepts anything has a bounded open set (the
arrival index on one commit in 16: a cheaper commit, the same bound a few leads later).

Every script declares every key it touches in KEYS (tests/state/test_scripts.py checks the Lua
by inspection, and the cluster tests run the service on a real cluster). One slot per
deployment means one deployment's load is one shard's (docs/operations.md, sizing); tenants
scale out by prefix.

Older versions put one hash tag per entity (``lr:{lead:ID}:history``, ``lr:{sla}:due``, ...):
:func:`legacy_to_current` maps such a name to this layout, and ``leadrouter migrate-keys``
(router/app/cli_migrate.py) renames existing data (docs/operations.md, "Key layout").
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

__all__ = ["DAY_TTL_S", "FUNNEL_DIMS", "LEGACY_TAGS", "Keys", "hash_tag", "legacy_to_current"]

DAY_TTL_S = 2 * 86400  # a day counter outlives its day in every time zone (UTC-12 … UTC+14)
# The funnel's dimensions (router/state/funnel.py, lua/_funnel.lua), in the order of the
# groups the commit passes and of the day hashes (Keys.funnel_day).
FUNNEL_DIMS = ("segment", "territory", "source", "pool", "owner", "grade", "status", "rule")


class Keys:
    """Key builder for one prefix. The per-entity methods are memoised: the same few hundred
    rep/pool keys are built for every lead, and building them is measurable at 10k leads/s."""

    def __init__(self, prefix: str = "lr:") -> None:
        self.prefix = prefix
        self.tag = hash_tag(prefix)
        self.base = b = f"{prefix}{{{self.tag}}}:"  # every key starts with this
        self.outbox = f"{b}outbox"
        self.outbox_dead = f"{b}outbox:dead"
        self.sla_due = f"{b}sla:due"
        self.sla_facts = f"{b}sla:facts"
        self.arrivals = f"{b}leads:arrivals"  # zset: lead id by created ms (replay)
        self.arrivals_backfill = f"{b}leads:arrivals:backfill"  # hash: done | cursor
        self.arrivals_lease = f"{b}leads:arrivals:backfill:lease"
        self.rules_generation = f"{b}rules:generation"
        self.lists = f"{b}lx"  # zset: the list indexes (lists.py, lua/_lx.lua)
        self.lists_vals = f"{b}lx:vals"  # set: the value ranges of lx in use (pruning)
        self.lists_secret = f"{b}lx:secret"  # str: the cursors' HMAC key
        self.accounts_index = f"{b}accounts"  # zset: domains (lex), owner\x1fdomain (lex)
        self.accounts_backfill = f"{b}accounts:backfill"  # str: set once older ones are in
        # Bound methods wrapped per instance, so two stores with different prefixes never share.
        self.pool = lru_cache(maxsize=1024)(self._pool)
        self.pool_day = lru_cache(maxsize=4096)(self._pool_day)
        self.rep = lru_cache(maxsize=4096)(self._rep)
        self.rep_day = lru_cache(maxsize=8192)(self._rep_day)
        self.rep_open = lru_cache(maxsize=4096)(self._rep_open)
        self.queue = lru_cache(maxsize=1024)(self._queue)
        self._routed_by_day: dict[int, str] = {}

    def _pool(self, pool: str) -> str:
        return f"{self.base}pool:{pool}"

    def _pool_day(self, pool: str, day: str) -> str:
        return f"{self.base}pool:{pool}:day:{day}"

    def _rep(self, rep: str) -> str:
        return f"{self.base}rep:{rep}"

    def _rep_day(self, rep: str, day: str) -> str:
        return f"{self.base}rep:{rep}:day:{day}"

    def _rep_open(self, rep: str) -> str:
        return f"{self.base}rep:{rep}:open"

    def _queue(self, queue: str) -> str:
        return f"{self.base}queue:{queue}"

    def account(self, domain: str) -> str:
        # Domains are case-insensitive; normalising here means every caller agrees.
        return f"{self.base}account:{domain.strip().lower().rstrip('.')}"

    def lead(self, lead_id: str) -> str:
        return f"{self.base}lead:{lead_id}"

    def history(self, lead_id: str) -> str:
        return f"{self.base}lead:{lead_id}:history"

    def action_link(self, link_id: str) -> str:
        """str: a signed action link's use (``busy`` while acting, then ``spent``)."""
        return f"{self.base}link:{link_id}"

    def idempotency(self, scope: str, key: str) -> str:
        """``scope`` says whose key it is (``key:<source>`` for the Idempotency-Key header,
        ``ext:<source>`` for external ids) so two sources never collide."""
        return f"{self.base}idem:{scope}:{key}"

    # -- engagement (router/state/engagement.py: layout, bounds) -----------------------------

    def engagement(self, person: str) -> str:
        """hash: one person's engagement (``e:<email hash>``, ``a:``/``u:<id hash>``,
        ``l:<lead id>``): per event type the recent times, a decayed remainder, the lead."""
        return f"{self.base}eng:{person}"

    def engagement_seen(self, person: str) -> str:
        """zset: the person's recent messageIds (dedupe), bounded by count and age."""
        return f"{self.base}eng:{person}:seen"

    def engagement_alias(self, alias: str) -> str:
        """str: the person an anonymousId / userId (``a:``/``u:<hash>``) was identified as."""
        return f"{self.base}eng:alias:{alias}"

    # -- intake (router/state/ratelimit.py, apikeys.py, replay.py, erasure.py) ----------------

    def ratelimit(self, bucket: str) -> str:
        """GCRA state (str, ms): ``form:<id>:ip:<addr>``, ``key:<key id>``; TTL <= period."""
        return f"{self.base}rl:{bucket}"

    def webhook(self, source: str, message_id: str) -> str:
        """A delivered webhook id (replay protection); TTL a few tolerance windows."""
        return f"{self.base}wh:{source}:{message_id}"

    def person(self, email_hash: str) -> str:
        """set: the lead ids of one person (sha256 of the email), for erasure; TTL retention."""
        return f"{self.base}person:{email_hash}"

    @property
    def api_keys(self) -> str:
        """hash: sha256(key) → JSON metadata (id, source, scopes, expiry); never the key."""
        return f"{self.base}apikeys"

    @property
    def erasures(self) -> str:
        """stream: one entry per erasure (when, what kind, how many records); no personal data."""
        return f"{self.base}erasures"

    @property
    def audit(self) -> str:
        """stream: the audit log (router/state/audit.py); ids are ms, trimmed by MINID."""
        return f"{self.base}audit"

    def audit_claim(self, digest: str) -> str:
        """str: which worker records one event every worker sees (a rules file change)."""
        return f"{self.base}audit:claim:{digest}"

    def funnel(self, dim: str, day: str) -> str:
        """hash: the funnel aggregates of one dimension for the leads routed that UTC day
        (router/state/funnel.py); TTL the day's end + retention + 2 days."""
        return f"{self.base}funnel:{dim}:{day}"

    def funnel_routed(self, when: dt.datetime | str) -> str:
        """hash: the leads routed one UTC day per combination of their groups (the 8
        dimensions' groups joined by ``\x1f``), counted by the commit in one write. Memoised
        by day number: every commit asks."""
        if isinstance(when, str):
            return self.funnel("routed", when)
        day = int(when.timestamp()) // 86400
        key = self._routed_by_day.get(day)
        if key is None:
            key = self._routed_by_day[day] = self.funnel("routed", _day(when))
        return key

    def funnel_day(self, when: dt.datetime | str) -> tuple[str, ...]:
        """The funnel hashes of one UTC day (a date string, or a time's UTC day), one per
        dimension in :data:`FUNNEL_DIMS` order."""
        day = _day(when)
        return tuple(self.funnel(d, day) for d in FUNNEL_DIMS)

    def shadow(self, name: str) -> str:
        """hash: a shadow rules version's periods (router/state/shadow.py)."""
        return f"{self.base}shadow:{name}"

    def console_session(self, digest: str) -> str:
        """str: a console session by the sha256 of its cookie (router/state/console.py)."""
        return f"{self.base}ui:session:{digest}"

    def lead_id(self, key: str | bytes) -> str | None:
        """The lead id in a lead hash's name (``lead:ID``, not its history), else None."""
        name = key.decode() if isinstance(key, bytes) else key
        head = f"{self.base}lead:"
        if not name.startswith(head) or name.endswith(":history"):
            return None
        return name[len(head):]


def _day(when: dt.datetime | str) -> str:
    return when if isinstance(when, str) else when.astimezone(dt.UTC).date().isoformat()


def hash_tag(prefix: str) -> str:
    """The one hash tag of a deployment: its prefix without the trailing ``:`` (and without
    braces, which would end the tag early); ``lr`` for an empty prefix."""
    tag = prefix.rstrip(":").replace("{", "").replace("}", "")
    return tag or "lr"


# The tags of the layout before one tag per deployment: an entity kind (``lead:ID``) or a
# singleton (``outbox``). Only names whose tag is one of these are renamed.
LEGACY_TAGS = ("pool:", "rep:", "account:", "lead:", "idem:", "eng:", "rl:", "wh:", "person:",
               "queue:", "shadow", "rules", "apikeys", "erasures", "outbox", "sla", "leads",
               "lx", "accounts")  # the last two: newer singletons, renamed alike


def legacy_to_current(keys: Keys, name: str) -> str | None:
    """The current name of a key in the old layout (``lr:{lead:ID}:history`` →
    ``lr:{lr}:lead:ID:history``); None for a name that is not an old-layout key of this
    prefix (current names included, so renaming twice is a no-op). Suffixes never contain
    ``}``, so the tag ends at the last one: an id with a brace survives."""
    if not name.startswith(keys.prefix + "{") or name.startswith(keys.base):
        return None
    inner, brace, suffix = name[len(keys.prefix) + 1:].rpartition("}")
    if not brace:
        return None
    singleton = inner in ("shadow", "rules", "apikeys", "erasures", "outbox", "sla", "leads",
                          "lx", "accounts")
    if not singleton and not inner.startswith(tuple(t for t in LEGACY_TAGS if t.endswith(":"))):
        return None
    return f"{keys.base}{inner}{suffix}"
