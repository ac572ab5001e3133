"""The Redis-backed state of the service: the only code that speaks to Redis.

The hot path costs two round trips per lead at most, whatever the rules or the pool sizes:

1. :meth:`Store.prefetch` — one pipeline: claim the idempotency keys (``SET NX GET PX``), read
   the account owner of the company domain, plus any :class:`ExtraRead` (engagement counts).
   Without claims it may guess the reads instead (``optimistic``, :class:`Guard`): no round
   trip, and the commit checks the guess before it writes;
2. :meth:`Store.commit` — one EVALSHA of ``lua/commit.lua``: pick a rep (strategy, caps,
   availability, overflow chain), count it, store decision + history, schedule the SLA,
   publish the outbox event and finalise the idempotency keys, atomically.

:attr:`Store.round_trips` counts network round trips (a pipeline is one, an EVALSHA is one; a
NOSCRIPT reload adds two) for the benchmarks and tests. Key layout and topology: ``keys.py``;
the connection (one multiplexed hiredis protocol, not redis-py's pool, and why): ``wire.py``;
how a commit's KEYS and ARGV are built: ``_commit_args.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import msgspec

from router.engine.availability import PoolPlan
from router.state._commit_args import CommitArgs
from router.state.codec import LxKeep, stored_lead, text
from router.state.directory import Directory
from router.state.errors import StateError, check_reply, confirm_replicas, translate_errors
from router.state.guesses import Guesses
from router.state.keys import Keys, hash_tag
from router.state.models import (
    AssignResult,
    Claim,
    ClaimRequest,
    CommitPlan,
    Guard,
    HistoryEntry,
    Prefetched,
    StoredLead,
    TransitionResult,
    from_ms,
    to_ms,
)
from router.state.scripts import PackedKeys, load_scripts
from router.state.wire import Arg, TlsOptions, Wire

__all__ = ["ExtraRead", "Store", "fingerprint"]


def fingerprint(body: bytes) -> str:
    """The request-body fingerprint stored with idempotency keys (sha256 hex)."""
    return hashlib.sha256(body).hexdigest()


class ExtraRead(Protocol):
    """A read added to the prefetch pipeline (e.g. engagement counts), so it costs no extra
    round trip. Implementations live in ``router/state/`` and build keys with ``keys``."""

    def commands(self, keys: Keys) -> Sequence[tuple[Arg, ...]]: ...

    def parse(self, replies: list[Any]) -> Any: ...


class _Parse:
    """Replies of a prefetch's reads (or of a stale commit's guards) → :class:`Prefetched`. A
    class, not a closure: the result keeps it (``reread``), and a closure that names itself is
    a reference cycle per lead — garbage only the cyclic collector frees, in long pauses."""

    __slots__ = ("account", "spans")

    def __init__(self, account: bool, spans: tuple[tuple[ExtraRead, int, int], ...]) -> None:
        self.account = account
        self.spans = spans

    def __call__(self, replies: Sequence[Any], guards: tuple[Guard, ...] = ()) -> Prefetched:
        return Prefetched(
            claims=(), account_owner=text(replies[0][0]) if self.account else None,
            extra=tuple(read.parse(list(replies[a:b])) for read, a, b in self.spans),
            guards=guards, reread=self)


class Store(Directory):
    """Async access to the service state. Create with :meth:`connect`; share one Store between
    all tasks of an event loop (they multiplex one connection), one per process."""

    def __init__(self, wire: Wire, *, prefix: str = "lr:",
                 retention: dt.timedelta = dt.timedelta(hours=24),
                 inflight_ttl: dt.timedelta = dt.timedelta(seconds=30),
                 history_max: int = 200, outbox_maxlen: int = 100_000,
                 sla_facts_maxlen: int = 200_000,
                 idempotency_retention: dt.timedelta | None = None,
                 wait_replicas: int = 0, wait_timeout_ms: int = 500) -> None:
        self.wire = wire
        # LEADROUTER_REDIS_WAIT_REPLICAS: a commit answers once this many replicas have it.
        self.wait_replicas, self.wait_timeout_ms = wait_replicas, wait_timeout_ms
        self.keys = Keys(prefix)
        self.retention_ms = int(retention.total_seconds() * 1000)
        # How long a retry with the same Idempotency-Key / external_id returns the first
        # decision (default: as long as the decision is kept).
        self.idempotency_ms = int((idempotency_retention or retention).total_seconds() * 1000)
        self.inflight_ms = int(inflight_ttl.total_seconds() * 1000)
        self.history_max, self.outbox_maxlen = history_max, outbox_maxlen
        self.sla_facts_maxlen = sla_facts_maxlen
        self.round_trips = 0
        self._scripts = load_scripts()
        self._encoder = msgspec.json.Encoder()
        self._plan_encoder = msgspec.msgpack.Encoder()  # LuaPlan: cmsgpack decodes faster
        self._commit_args = CommitArgs(
            self.keys, retention_ms=self.retention_ms, idempotency_ms=self.idempotency_ms,
            history_max=history_max, outbox_maxlen=outbox_maxlen,
            sla_facts_maxlen=sla_facts_maxlen)
        self._guesses, self._lx_keep = Guesses(), LxKeep()  # optimistic reads; lx TTL renewals

    @classmethod
    async def connect(cls, url: str, *, prefix: str = "lr:", verify: bool = True,
                      timeout: float = 2.0, connect_timeout: float = 1.0,
                      tls: TlsOptions | None = None, **options: Any) -> Store:
        """Connect to ``url`` (``redis://host:port/db``, see ``wire.py``). With ``verify``
        (default) the server must answer, be Redis >= 7 / Valkey (``SET NX GET``) and take the
        scripts, or this raises :class:`StateUnavailable` / :class:`StateError`; without it
        the connection is made on first use (a service may start before its Redis).
        ``timeout`` bounds every call. ``options``: see ``__init__``."""
        store = cls(Wire(url, timeout=timeout, connect_timeout=connect_timeout, tls=tls,
                         hash_tag=hash_tag(prefix)), prefix=prefix, **options)
        if verify:
            try:
                await store.load_scripts()
            except BaseException:
                await store.close()
                raise
        return store

    async def load_scripts(self) -> None:
        """Check the server version and SCRIPT LOAD every script (one round trip)."""
        with translate_errors("script load"):
            self.round_trips += 1
            replies = await self.wire.batch(
                [("INFO", "server"), *(("SCRIPT", "LOAD", sc.source)
                                       for sc in self._scripts.values())])
        for reply in replies:
            check_reply("script load", reply)
        info = dict(line.split(":", 1) for line in replies[0].decode().splitlines()
                    if ":" in line)
        version = info.get("redis_version", "0")
        if int(version.split(".", maxsplit=1)[0]) < 7:
            raise StateError(f"Redis {version} is too old: leadrouter needs Redis >= 7 or Valkey "
                             "(SET ... NX GET)")

    async def close(self) -> None:
        await self.wire.close()

    async def ping(self) -> None:
        """Raise :class:`StateUnavailable` unless Redis answers now (readiness checks)."""
        with translate_errors("ping"):
            self.round_trips += 1
            await self.wire.call("PING")

    def _count(self, n: int) -> None:
        self.round_trips += n

    # -- hot path ----------------------------------------------------------------------------

    async def prefetch(self, claims: Sequence[ClaimRequest] = (), *,
                       account_domain: str | None = None,
                       extra: Sequence[ExtraRead] = (), optimistic: bool = False) -> Prefetched:
        """Claim ``claims`` and read what the rules need, in one pipelined round trip.

        Claims that come back ``new`` are owned by this request: pass them to
        :meth:`commit` (via :attr:`CommitPlan.claims`) or :meth:`release` them.

        ``optimistic``: without claims, guess the reads instead (the account owner this worker
        last saw, else none; a person without engagement) and let the commit check them
        (:class:`Guard`): no round trip here. A wrong guess costs no more round trips than the
        read would have (the stale commit returns what it found); while more than a quarter of
        guesses fail, this reads as usual.
        """
        commands: list[tuple[Arg, ...]] = [self._claim_command(c) for c in claims]
        reads: list[tuple[Arg, ...]] = []
        if account_domain:
            reads.append(("HMGET", self.keys.account(account_domain), "owner"))
        spans: list[tuple[ExtraRead, int, int]] = []
        for read in extra:
            start = len(reads)
            reads.extend(read.commands(self.keys))
            spans.append((read, start, len(reads)))
        if not commands and not reads:
            return Prefetched(claims=(), account_owner=None)

        parse = _Parse(account_domain is not None, tuple(spans))
        guesses = self._guesses
        kept = 1 if account_domain else 0  # the leading reads remembered: see Guard.keep
        if optimistic and not claims and all(cmd[0] == "HMGET" for cmd in reads) \
                and guesses.guessing():
            guessed = [guesses.guess(cmd) if i < kept else [None] * (len(cmd) - 2)
                       for i, cmd in enumerate(reads)]
            return parse(guessed, tuple(
                Guard(key=str(cmd[1]), fields=tuple(str(f) for f in cmd[2:]), seen=values[0],
                      keep=i < kept)
                for i, (cmd, values) in enumerate(zip(reads, guessed, strict=True))))
        with translate_errors("prefetch"):
            self.round_trips += 1
            replies = await self.wire.batch(commands + reads)
        for reply in replies:
            check_reply("prefetch", reply)
        guesses.remember(reads[:kept], replies[len(claims):len(claims) + kept])
        pre = parse(replies[len(claims):])
        results = tuple(self._claim_result(c, r) for c, r in zip(claims, replies, strict=False))
        return msgspec.structs.replace(pre, claims=results) if results else pre

    def _marker(self, c: ClaimRequest) -> str:
        return f"F|{c.fingerprint}|{c.lead_id}"

    def _claim_command(self, c: ClaimRequest) -> tuple[Arg, ...]:
        # NX + GET (Redis >= 7): set-if-absent and see the old value in the same command, so
        # concurrent duplicates cannot both see "absent". The in-flight TTL frees the key if
        # this worker dies before commit or release.
        key = self.keys.idempotency(c.scope, c.key)
        return ("SET", key, self._marker(c), "NX", "GET", "PX", self.inflight_ms)

    def _claim_result(self, c: ClaimRequest, reply: bytes | None) -> Claim:
        key, marker = self.keys.idempotency(c.scope, c.key), self._marker(c)
        state: str = "new"
        lead_id = c.lead_id
        if reply is not None and reply.decode() != marker:  # == marker: our own retried SET
            kind, fp, lead_id = reply.decode().split("|", 2)
            state = "in_flight" if kind == "F" else "done" if c.matches(fp) else "mismatch"
        return Claim(scope=c.scope, key=c.key, state=state,  # type: ignore[arg-type]
                     lead_id=lead_id, fingerprint=c.fingerprint, redis_key=key, marker=marker)

    async def settle(self, claims: Sequence[Claim], lead_id: str) -> None:
        """Point ``claims`` at ``lead_id`` with their fingerprints, as a commit does (a lead
        updated under its external_id: router/services/leads.py). One round trip."""
        ttl = min(self.idempotency_ms, self.retention_ms)
        with translate_errors("claims"):
            self.round_trips += 1
            for reply in await self.wire.batch([("SET", c.redis_key, f"D|{c.fingerprint}|"
                                                 f"{lead_id}", "PX", ttl) for c in claims]):
                check_reply("claims", reply)

    async def release(self, claims: Sequence[Claim]) -> None:
        """Give up the claims this request owns (processing failed before commit), so a retry
        can proceed at once instead of getting 409 until the in-flight TTL runs out."""
        owned = [c for c in claims if c.owned]
        if not owned:
            return
        with translate_errors("release"):
            # Compare-and-delete: never drop a key someone else claimed after ours expired.
            await self._scripts["release"](self.wire, [c.redis_key for c in owned],
                                           [c.marker for c in owned], self._count)

    async def commit(self, plan: CommitPlan) -> AssignResult:
        """Pick (for pool routes) and store the lead in one atomic script; see the module doc."""
        keys, arg = self._commit_args.pack(plan)
        lead_id = plan.lead_id
        lxt = self._lx_keep.ask(arg, plan.lists)  # the list indexes' arguments (codec.py)
        with translate_errors("commit"):
            reply = await self._scripts["commit"](
                self.wire, keys, [self._plan_encoder.encode(arg), plan.decision, plan.input],
                self._count)
        status, owner_b, pool_b, queue_b, strategy_b, reason_b, due, at, other, *more = reply
        self._lx_keep.done(lxt, status)
        if self.wait_replicas and status != b"stale":  # see docs/operations.md
            self.round_trips += await confirm_replicas(self.wire, self.wait_replicas,
                                                       self.wait_timeout_ms)
        if plan.guards:
            stale = status == b"stale"
            self._guesses.record(stale)
            if stale:  # nothing written; the reply holds what the guessed reads hold now
                replies = more[1]
                self._guesses.remember(
                    [("HMGET", g.key, *g.fields) for g in plan.guards if g.keep],
                    [r for g, r in zip(plan.guards, replies, strict=True) if g.keep])
                return AssignResult(
                    lead_id=lead_id, status="stale", owner=None, pool=None, queue=None,
                    strategy=None, reason="", assigned_at=from_ms(at), due_at=None,
                    reads=tuple(replies))
        return AssignResult(
            lead_id=lead_id, status=status.decode(), owner=text(owner_b), pool=text(pool_b),
            queue=text(queue_b), strategy=text(strategy_b), reason=reason_b.decode(),
            assigned_at=from_ms(at), due_at=from_ms(due) if due >= 0 else None,
            other_lead=text(other), engagement_stale=bool(more and more[0]),
        )

    async def run_script(self, name: str, keys: Sequence[str] | Sequence[PackedKeys],
                         args: Sequence[str | bytes]) -> Any:
        """EVALSHA one of the scripts by name, for the state modules beside this one
        (``sla.py``); errors are translated like every other operation's."""
        with translate_errors(name):
            return await self._scripts[name](self.wire, keys, args, self._count)

    def pool_keys(self, plan: PoolPlan) -> PackedKeys:
        """A pool's keys in the layout ``_pick.lua`` expects (packed once per plan)."""
        return self._commit_args.pool_keys(plan)

    # -- leads -------------------------------------------------------------------------------

    async def get_lead(self, lead_id: str) -> StoredLead | None:
        """The stored decision, its live fields and its history (one round trip), or None."""
        with translate_errors("get_lead"):
            self.round_trips += 1
            fields, history = await self.wire.batch(
                [("HGETALL", self.keys.lead(lead_id)),
                 ("LRANGE", self.keys.history(lead_id), 0, -1)])
        check_reply("get_lead", fields)
        check_reply("get_lead", history)
        return stored_lead(lead_id, fields, history) if fields else None

    async def transition(self, lead_id: str, *, now: dt.datetime, new_state: str,
                         entry: HistoryEntry, expected_owner: str | None = None,
                         expected_states: Sequence[str] = (),
                         fields: Mapping[str, str] | None = None, close_open: bool = False,
                         clear_sla: bool = False, event: str | None = None) -> TransitionResult:
        """Atomically move a lead to ``new_state`` if its owner/state are as expected, append
        ``entry`` (its ``at`` is set to ``now``) to its history, optionally take it out of the
        owner's open set (accepted / rejected: least_loaded stops counting it) and the SLA
        schedule, and publish ``event`` to the outbox. A generic compare-and-set; the SLA owner
        actions and reassignments (new pick, counts, deadline, report facts) are in
        ``sla.py``."""
        if close_open and not expected_owner:
            raise ValueError("close_open needs expected_owner (whose open set to update)")
        k = self.keys
        keys = [k.lead(lead_id), k.history(lead_id), k.outbox, k.sla_due]
        if close_open and expected_owner:
            keys.append(k.rep_open(expected_owner))
        keys += (k.lists, k.lists_vals)  # lua/_lx.lua: the indexes follow the move
        doc = msgspec.to_builtins(entry)
        doc.pop("at", None)
        flat = [item for pair in (fields or {}).items() for item in pair]
        arg = {"id": lead_id, "now": to_ms(now), "owner": expected_owner or "",
               "states": list(expected_states), "state": new_state, "entry": doc,
               "fields": flat, "close_open": close_open, "clear_sla": clear_sla,
               "event": event or "", "hmax": self.history_max, "omax": self.outbox_maxlen,
               "lxk": len(keys) - 1}
        with translate_errors("transition"):
            status, owner, state = await self._scripts["transition"](
                self.wire, keys, [self._encoder.encode(arg)], self._count)
        return TransitionResult(status=status.decode(), owner=text(owner), state=text(state))
