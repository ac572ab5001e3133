"""The hooks a leadrouter plugin may implement, and the types they take and return.

A plugin is any object (a module, a class instance) with methods marked ``@hookimpl`` whose
names are hook names below. leadrouter calls every hook **by keyword**: an implementation
declares only the arguments it needs, in any order, as ordinary or keyword-only parameters,
so a hook that gains an argument in a later release never breaks an existing plugin. A method
marked ``@hookimpl`` whose name is not a hook, or that asks for an argument the hook does not
have, is refused when the service starts.

Every hook is isolated: if it raises, runs past its time budget or returns something invalid,
the lead is routed without it, the explanation says so, a metric counts it, and a plugin hook
that keeps failing is switched off for a cool-down (circuit breaker). ``docs/plugins.md``
documents each hook; a test keeps that page and these signatures in step.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal

import msgspec
import pluggy

from leadrouter_sdk._decision import Contribution, Decision, Score
from leadrouter_sdk._lead import Lead

__all__ = [
    "PROJECT",
    "Contributions",
    "Event",
    "ExpressionFunction",
    "Fields",
    "HookSpecs",
    "PermanentDeliveryError",
    "PluginDisabled",
    "RouteOverride",
    "RouteProposal",
    "ScoreContext",
    "ValueType",
    "hookimpl",
    "hookspec",
]

PROJECT = "leadrouter"  # the pluggy project name and the entry-point group

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

ValueType = Literal["number", "text", "boolean", "datetime", "any"]


class PluginDisabled(Exception):
    """Raise from a plugin's constructor when it is installed but not configured (no data
    file, no URL): the plugin is listed as ``disabled`` with your message and skipped, never
    treated as a failure, even in strict mode."""


class PermanentDeliveryError(Exception):
    """Raise from ``on_event`` when delivering *this* event can never succeed (a rep missing
    from your mapping, a record or field the receiver refuses): the event goes to the
    dead-letter stream at once, with your message as its reason (so say what to fix, without
    personal data), instead of being retried with backoff. It does not count toward the
    plugin's circuit breaker. Any other exception means "try again later"."""


class ScoreContext(msgspec.Struct, frozen=True, kw_only=True):
    """What a scorer may want besides the lead: derived values the rules also see."""

    now: datetime.datetime
    rules_version: str
    account_owner: str | None = None
    email_domain: str | None = None
    company_domain: str | None = None
    free_email: bool = False
    disposable_email: bool = False
    region: str | None = None


class RouteProposal(msgspec.Struct, frozen=True, kw_only=True):
    """What the rules decided before anything is committed: the ``decision`` of ``route``.

    ``kind`` is ``pool``, ``queue``, ``owner`` or ``account_owner``; ``target`` the pool id,
    queue name or rep id; ``rule`` the assignment rule that chose it (None: default queue).
    """

    status: str
    score: Score
    territory: str | None
    segment: str | None
    kind: str
    target: str | None
    rule: str | None
    reason: str
    sla_policy: str | None
    rules_version: str
    matched: tuple[str, ...] = ()


class RouteOverride(msgspec.Struct, frozen=True, kw_only=True):
    """Send the lead somewhere else than the rules chose: exactly one of ``owner`` (a rep id
    from reps.yaml), ``pool`` (a pool id from the rule files) or ``queue`` (any queue name)."""

    owner: str | None = None
    pool: str | None = None
    queue: str | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        targets = [t for t in (self.owner, self.pool, self.queue) if t]
        if len(targets) != 1:
            raise ValueError("a RouteOverride needs exactly one of owner, pool or queue")

    @property
    def kind(self) -> str:
        return "owner" if self.owner else "pool" if self.pool else "queue"

    @property
    def target(self) -> str:
        return self.owner or self.pool or self.queue or ""


class ExpressionFunction(msgspec.Struct, frozen=True, kw_only=True):
    """A function rule files may call, checked at rule load like the built-in ones.

    ``params`` and ``returns`` use the rule language's value types. ``impl`` is called with
    one positional value per parameter and must be **null-safe** (return None, or False for a
    predicate, for a missing or odd value, never raise), pure and fast: it runs inside rule
    evaluation, where no time budget can interrupt it. A rule whose function raises is treated
    as not matching, and the explanation says so.
    """

    name: str
    impl: Callable[..., Any]
    params: tuple[ValueType, ...]
    returns: ValueType
    doc: str
    example: str = ""


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Something that happened to a lead, read from the durable outbox.

    ``type`` is ``lead.<what>``: ``lead.assigned`` and ``lead.queued`` when a lead is routed,
    then ``lead.accepted``, ``lead.contacted``, ``lead.reassigned``, ``lead.breached``,
    ``lead.recycled``..., and ``sla.warning`` before a deadline. Events for a rep who can act
    carry ``data["links"]`` (signed accept/contacted/reject URLs) when the service has an
    action secret, and events with an owner ``data["owner_timezone"]`` (the rep's IANA zone in
    rules/reps.yaml). ``id`` is the outbox entry id: the same on every delivery attempt of
    this event (use it to drop duplicates, delivery is at least once), increasing with time.
    ``attempt`` counts deliveries to this sink, from 1. ``data`` holds the event's other
    fields (owner, pool, queue, due_at, the stored decision...); an event that carries the
    stored decision also has what a receiver needs to find the lead's record in its own
    system, taken from it: ``external_id`` and ``email`` (when the lead came with them) and
    ``source`` (the intake it came through: ``api``, ``hubspot``, a form's name...).
    """

    id: str
    type: str
    lead_id: str
    at: datetime.datetime
    attempt: int = 1
    data: dict[str, Any] = {}


Fields = Mapping[str, Any]  # lead field name -> value (``attributes``: a mapping)
Contributions = Iterable[Contribution] | Contribution


class HookSpecs:
    """The hook specifications (``pluggy`` hookspecs). Implement any subset."""

    @hookspec
    def enrich(self, *, lead: Lead) -> Fields | Awaitable[Fields | None] | None:
        """Add derived fields to a lead before it is scored (may be ``async``).

        Return a mapping of lead field names to values, or None. A value only fills a field
        the lead does not have (what the sender stated wins); ``attributes`` are merged the
        same way, key by key. Values are validated and normalised like an incoming lead
        (``"1,200"`` becomes 1200). Every enricher sees the lead as it arrived; they run
        concurrently, each within the plugin time budget.
        """

    @hookspec
    def score(self, *, lead: Lead, context: ScoreContext
              ) -> Contributions | Awaitable[Contributions | None] | None:
        """Add points to the lead's score: zero or more contributions (may be ``async``).

        Each :class:`Contribution` names its ``rule`` (an id of your own, e.g.
        ``email.role_account``), its ``group`` (``fit``, ``bant``, ``engagement`` or a group
        of your own, counted in the total only) and the ``points``, with an optional
        ``reason``. They are added to the score before grading and qualification, exactly
        like rule contributions.
        """

    @hookspec
    def register_functions(self) -> Iterable[ExpressionFunction]:
        """Extra functions for rule expressions, called once when plugins are loaded.

        Rule files are checked against them at load (names, argument count and types), like
        built-in functions. A name that clashes with a built-in or another plugin's function
        is refused.
        """
        return ()


    @hookspec(firstresult=True)
    def route(self, *, lead: Lead, decision: RouteProposal
              ) -> RouteOverride | Awaitable[RouteOverride | None] | None:
        """Override where the rules send the lead: the first plugin that returns a
        :class:`RouteOverride` wins; return None to keep the rules' choice (may be ``async``).
        An override naming an unknown pool or rep is refused and the rules' route is kept.
        """

    @hookspec
    def on_decision(self, *, lead: Lead, decision: Decision) -> Awaitable[None] | None:
        """Called after a decision is committed, before the response is sent (may be
        ``async``). Best effort and in process: for anything that must not be lost, or is
        slow, implement ``on_event`` instead."""

    @hookspec
    def on_event(self, *, event: Event) -> Awaitable[None] | None:
        """Receive an event from the durable outbox, at least once (may be ``async``).

        Return to acknowledge it. Raise (or run past the event budget) and it is delivered
        again later, with exponential backoff, also after a restart; after the configured
        number of attempts it is moved to the dead-letter stream. Raise
        :class:`PermanentDeliveryError` when retrying cannot help: the event is dead-lettered
        at once with your message. Each plugin gets every event independently of the others.

        One call at a time per worker, unless the plugin object (its class, or its module)
        declares ``sink_concurrency = N`` (an int >= 1): then up to N calls may overlap
        (capped by ``LEADROUTER_SINK_CONCURRENCY``), never two of the same lead (a lead's
        events arrive one after another, in commit order). Declare it only if overlapping
        calls are safe: a shared connection or client that takes concurrent requests, state
        changed only between awaits or under a lock.
        """

    @hookspec
    def shutdown(self) -> Awaitable[None] | None:
        """Called once when the service stops, after the last event was delivered (may be
        ``async``): close what the plugin keeps open (a connection, a file, a client).

        Within the event budget; an exception is logged and never stops the shutdown.
        """
