"""One ``Settings`` struct, from ``LEADROUTER_*`` environment variables and CLI flags.

Precedence: CLI flag > environment variable > default. Worker processes started by
``leadrouter serve --workers N`` receive the resolved settings through the environment, so every
worker runs with exactly what the supervisor resolved.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

from router.engine.schema import parse_duration

__all__ = ["ENV_PREFIX", "Settings", "SettingsError"]

ENV_PREFIX = "LEADROUTER_"

Seconds = Annotated[int, msgspec.Meta(gt=0)]


def _choices(cls: type, field: str) -> list[str]:
    """The values a ``Literal`` setting accepts (none for other types)."""
    hint = typing.get_type_hints(cls).get(field)
    return [str(v) for v in typing.get_args(hint)] if typing.get_origin(hint) is Literal else []


class SettingsError(ValueError):
    """A setting has an invalid value; the message names the variable and the fix."""


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8080
    workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    rules_dir: str = "rules"
    # No URL: start (or reuse) an embedded valkey-server with AOF persistence in data_dir.
    redis_url: str | None = None
    # rediss:// (docs/operations.md, "Redis high availability"): the CA bundle that signs the
    # server's certificate (default: the system's), a client certificate and key (servers with
    # tls-auth-clients), and the name to verify when it differs from the URL's host.
    redis_tls_ca_file: str | None = None
    redis_tls_cert_file: str | None = None
    redis_tls_key_file: str | None = None
    redis_tls_server_name: str | None = None
    # After each commit, WAIT until this many replicas have it (0: answer once the primary has
    # it), at most redis_wait_timeout_ms; on a timeout the lead is stored but answered 503.
    redis_wait_replicas: Annotated[int, msgspec.Meta(ge=0, le=16)] = 0
    redis_wait_timeout_ms: Annotated[int, msgspec.Meta(ge=1, le=60_000)] = 500
    # Redis/Valkey Cluster: the URL's host(s) are seed nodes (same as redis+cluster://).
    redis_cluster: bool = False
    data_dir: str = ".leadrouter"
    # The embedded valkey-server listens on <data_dir>/valkey.sock only; a port here opens TCP
    # on 127.0.0.1 too, for tools that cannot use a Unix socket (0: a free port, logged).
    embedded_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] | None = None
    key_prefix: str = "lr:"
    # Bearer token for admin endpoints (rules reload, reps, accounts); unset disables them.
    admin_token: str | None = None
    decision_retention: Seconds = 30 * 86400
    idempotency_retention: Seconds = 86400
    # How long a person's engagement (event times, traits, identified ids, the aliases pointing
    # to them) is kept after their last event; event times older than this are not kept one by
    # one. Default 400 days (the longest count() window is 365).
    engagement_retention: Seconds = 400 * 86400
    # How long the audit log (GET /v1/admin/audit: who changed rules, reps, accounts, keys,
    # erasures) keeps an entry; default 400 days.
    audit_retention: Seconds = 400 * 86400
    inflight_timeout: Seconds = 30
    batch_limit: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 100
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1_048_576
    reload_poll_seconds: Annotated[float, msgspec.Meta(ge=0)] = 2.0
    # A rules file changed on disk is reloaded once it has looked the same for this long (at
    # most the poll interval; 0: at once): an editor saving in place (truncate, then write) must
    # not be caught half-written, a rejected reload the user never made (rules_watch.py).
    reload_settle_seconds: Annotated[float, msgspec.Meta(ge=0)] = 0.25
    require_rules_tests: bool = True
    # Shadow mode (docs/rules.md, "Before you publish a change"): a candidate rules directory
    # evaluated beside the live rules on every live lead, never acted on.
    shadow_rules: str | None = None
    # The reload gate, e.g. "status:5%,owner:10%": a rules reload that changes more than that
    # share of the last 7 days' leads is refused (unset: off).
    reload_max_change: str | None = None
    retry_after_seconds: Seconds = 2
    # Plugins (docs/plugins.md): installed entry points (group `leadrouter`) are loaded, plus
    # these modules ("pkg.mod" or "pkg.mod:Object", comma-separated), minus the blocked names
    # ("*" blocks every entry point). Strict: a plugin that fails to load stops start-up.
    plugins: str = ""
    plugins_block: str = ""
    plugins_strict: bool = False
    # Time budget of one hook call (seconds); on_event deliveries get their own.
    plugin_budget: Annotated[float, msgspec.Meta(gt=0)] = 0.25
    plugin_event_budget: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    # Circuit breaker: this many consecutive failures switch a hook off for the cool-down.
    plugin_breaker_threshold: Annotated[int, msgspec.Meta(ge=1)] = 5
    plugin_breaker_cooldown: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    # Outbox delivery to on_event sinks: idle poll interval, attempts before dead-lettering,
    # exponential backoff between attempts (first delay, cap).
    outbox_poll_seconds: Annotated[float, msgspec.Meta(gt=0)] = 0.2
    outbox_max_attempts: Annotated[int, msgspec.Meta(ge=1)] = 12
    outbox_retry_seconds: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    outbox_retry_max_seconds: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    # The most on_event calls of one sink in flight at once per process (a sink's own
    # `sink_concurrency` declaration is capped by it; 1 = one at a time for every sink).
    sink_concurrency: Annotated[int, msgspec.Meta(ge=1)] = 8
    # Events kept in the outbox stream for sinks (MAXLEN ~): how many a sink that is down may
    # miss before the oldest are trimmed; each holds the stored decision (docs/operations.md).
    outbox_maxlen: Annotated[int, msgspec.Meta(ge=1000)] = 100_000
    # SLA breach worker (docs/sla.md), in every process: how often it looks for due deadlines
    # (0 = not in this process), how many it claims at once, how long a claim holds before
    # another process may take the lead over (a worker that died mid-escalation).
    sla_poll_seconds: Annotated[float, msgspec.Meta(ge=0)] = 0.5
    sla_batch: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 200
    sla_lease_seconds: Annotated[float, msgspec.Meta(gt=0)] = 15.0
    # Facts kept for GET /v1/sla/report (a stream, trimmed to about this many entries).
    sla_facts_maxlen: Annotated[int, msgspec.Meta(ge=1000)] = 200_000
    # Where rejected (or SLA-recycled) leads go back to marketing, and where a lead rejected as
    # `wrong_territory` waits for sales ops when the rep names no pool.
    nurture_queue: str = "marketing-nurture"
    reroute_queue: str = "unassigned"
    log_level: str = "info"
    # Evaluation backend: compiled (default) or durable (durable-rules, Python < 3.13: the
    # `leadrouter-durable` package, found by entry point); see docs/rules.md, "Choosing an
    # engine".
    engine: Literal["compiled", "durable"] = "compiled"
    # One JSON line per HTTP request (leadrouter.access, at info) with request id and timing.
    access_log: bool = True
    # How often each worker moves its hot-path metric updates into prometheus-client.
    metrics_flush_seconds: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    # Net new container objects between runs of the cyclic garbage collector's youngest
    # generation (Python's default: 700). Under load most young objects belong to requests in
    # flight, so each run scans live objects for nothing; see docs/operations.md.
    gc_threshold: Annotated[int, msgspec.Meta(ge=700, le=10_000_000)] = 50_000
    # Without idempotency claims, decide on the account owner this worker last saw and as if
    # the person had no engagement, and let the commit check both: one Redis round trip per
    # lead instead of two; a wrong guess costs a second evaluation (docs/operations.md).
    optimistic_reads: bool = True
    # The list indexes (GET /v1/leads?status=..., queues, a rep's leads; docs/operations.md):
    # ~1 KB of Redis per lead. false: not written (those lists answer 409).
    list_indexes: bool = True
    # Set by `leadrouter serve` when it started the embedded valkey-server (for /v1/status).
    embedded_redis: bool = False
    # Intake (docs/intake.md). Client addresses: X-Forwarded-For is believed only from these
    # proxies (comma-separated addresses or CIDRs, e.g. "10.0.0.0/8,127.0.0.1"); none by default.
    trusted_proxies: str = ""
    # The service's public base URL (https://leads.example.com) as senders see it: HubSpot signs
    # the URL it called. Unset: the request's own URL.
    public_url: str | None = None
    # Signed action links (docs/notifications.md, "Action links"): the HMAC secret (unset: no
    # links), the previous secret still accepted until an ISO-8601 time (rotation), how long a
    # link outlives the lead's SLA deadline, and a link's lifetime when the lead has no SLA.
    action_secret: str | None = None
    action_secret_previous: str | None = None
    action_secret_previous_until: str | None = None
    action_link_margin: Seconds = 86400
    action_link_lifetime: Seconds = 7 * 86400
    # sla.warning events this long before a lead's SLA deadline (0: none); see
    # docs/notifications.md, "SLA warnings".
    sla_warn_before: Annotated[int, msgspec.Meta(ge=0)] = 0
    # Default rate limits: per client address per form, per API key / source (N/min, N/h ...).
    form_rate_limit: str = "20/min"
    source_rate_limit: str = "600/min"
    # Per request: form fields / lead fields at most, characters per value at most.
    max_fields: Annotated[int, msgspec.Meta(ge=10, le=10_000)] = 200
    max_field_chars: Annotated[int, msgspec.Meta(ge=256, le=1_000_000)] = 4000
    # Require an API key with the `intake` scope on POST /v1/leads and :batch (off: open, as
    # before; sources and erasure always need credentials).
    require_api_key: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None,
                 **overrides: Any) -> Settings:
        """Settings from ``environ`` (default ``os.environ``), then non-None ``overrides``."""
        env = os.environ if environ is None else environ
        raw: dict[str, Any] = {}
        for name in cls.__struct_fields__:
            value = env.get(ENV_PREFIX + name.upper())
            if value is not None and value != "":
                raw[name] = value
        raw.update({k: v for k, v in overrides.items() if v is not None})
        for name in ("decision_retention", "idempotency_retention", "engagement_retention",
                     "audit_retention", "inflight_timeout", "action_link_margin",
                     "action_link_lifetime", "sla_warn_before"):
            if isinstance(raw.get(name), str) and not raw[name].isdigit():
                try:
                    raw[name] = parse_duration(raw[name])
                except ValueError:
                    raise SettingsError(f"{ENV_PREFIX}{name.upper()}={raw[name]!r} is not a "
                                        "duration — use seconds or e.g. 30d, 24h, 90m") from None
        try:
            settings = msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as exc:
            field = str(exc).rsplit("$.", 1)[-1].rstrip("`") if "$." in str(exc) else ""
            var = f"{ENV_PREFIX}{field.upper()}" if field else "a setting"
            choices = _choices(cls, field)
            if choices:
                raise SettingsError(f"{var}: {raw.get(field)!r} is not one of "
                                    f"{', '.join(choices)} — fix the value (see "
                                    "docs/operations.md)") from None
            raise SettingsError(f"{var}: {exc} — fix the value (see docs/operations.md)") from None
        scheme, sep, rest = (settings.redis_url or "").partition("://")
        if settings.redis_cluster and sep and scheme in ("redis", "rediss", "valkey", "valkeys"):
            # LEADROUTER_REDIS_CLUSTER=true: the same URL as a cluster seed list
            settings = msgspec.structs.replace(settings, redis_url=f"{scheme}+cluster://{rest}")
        return settings

    def to_env(self) -> dict[str, str]:
        """The settings as environment variables, for worker processes."""
        out = {}
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if value is not None:
                out[ENV_PREFIX + name.upper()] = str(value).lower() if isinstance(value, bool) \
                    else str(value)
        return out
