"""Rate limiting policy: which bucket a request counts against, the client's address, headers.

Buckets: ``form:<form>:ip:<client address>`` for public forms (IPv6 clients by their /64),
``key:<key id>`` for API-key requests and ``source:<source>`` for signed webhooks. The counting
itself is one atomic GCRA script (``router/state/ratelimit.py``), so limits hold across
workers and replicas.

The client address is the TCP peer, unless the peer is a trusted proxy (setting
``trusted_proxies``): then ``X-Forwarded-For`` is read right to left, skipping trusted hops,
and the first untrusted address is the client. Nothing is trusted by default, so a client
cannot pick its own bucket by sending the header.

:class:`WebhookReplays` (each signed webhook id accepted once) lives here too: like the rate
limit it guards the intake against what senders repeat, with one Redis call per request.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Mapping, Sequence
from functools import lru_cache

from router.intake.config import RateSpec
from router.intake.mapping import IntakeError
from router.services.clock import Clock
from router.state.errors import StateUnavailable
from router.state.ratelimit import RateDecision, RateLimiter
from router.state.replay import ReplayGuard
from router.state.store import Store

__all__ = ["RateLimits", "WebhookReplays", "client_address", "enforce", "headers_for",
           "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def parse_networks(spec: str) -> tuple[Network, ...]:
    out: list[Network] = []
    for part in spec.replace(";", ",").split(","):
        if part.strip():
            out.append(ipaddress.ip_network(part.strip(), strict=False))
    return tuple(out)


def _addr(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("[") and "]" in text:
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # "1.2.3.4:5678"
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(addr: ipaddress.IPv4Address | ipaddress.IPv6Address,
             nets: Sequence[Network]) -> bool:
    return any(addr in n for n in nets)


def client_address(peer: str | None, headers: Mapping[str, str], trusted: str) -> str:
    """The client's address as a bucket name (see the module docstring)."""
    addr = _addr(peer or "")
    nets = parse_networks(trusted) if trusted else ()
    if addr is not None and nets and _trusted(addr, nets):
        hops = [h for h in headers.get("x-forwarded-for", "").split(",") if h.strip()][-32:]
        for hop in reversed(hops):
            candidate = _addr(hop)
            if candidate is None:
                break
            addr = candidate
            if not _trusted(candidate, nets):
                break
    if addr is None:
        return "unknown"
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)


def headers_for(d: RateDecision) -> dict[str, str]:
    """RateLimit header fields (IETF httpapi draft) plus Retry-After when refused."""
    out = {"RateLimit-Limit": str(d.limit), "RateLimit-Remaining": str(d.remaining),
           "RateLimit-Reset": str(d.reset_s), "RateLimit-Policy": f"{d.limit};w={d.period_s}"}
    if not d.allowed:
        out["Retry-After"] = str(d.retry_after_s)
    return out


async def enforce(limiter: RateLimiter, bucket: str, spec: RateSpec) -> dict[str, str]:
    """Count the request; the headers to send, or IntakeError(429) carrying them."""
    decision = await limiter.hit(bucket, limit=spec.limit, period_s=spec.period)
    headers = headers_for(decision)
    if not decision.allowed:
        raise IntakeError(429, "Too many requests", f"rate limit {spec.limit} per "
                          f"{spec.period}s reached — retry in {decision.retry_after_s}s",
                          field=None, kind="rate-limited", headers=headers)
    return headers


class RateLimits:
    """The rate limits of one store: ``await limits.enforce(bucket, spec)``. They judge by
    Valkey's clock (one clock for every worker), or by ``clock`` when one is given."""

    def __init__(self, store: Store, *, clock: Clock | None = None) -> None:
        self.limiter = RateLimiter(store, now_ms=clock.ms if clock is not None else None)

    async def enforce(self, bucket: str, spec: RateSpec) -> dict[str, str]:
        """Count the request; the headers to send, or IntakeError(429) carrying them."""
        return await enforce(self.limiter, bucket, spec)


class WebhookReplays:
    """Each signed webhook id is accepted once (router/state/replay.py): ``claim`` before
    processing, ``finish`` with the outcome, ``release`` when processing failed so the
    sender's retry gets through."""

    def __init__(self, store: Store) -> None:
        self.guard = ReplayGuard(store)

    async def claim(self, source: str, message_id: str, fingerprint: str,
                    ttl_s: int) -> str | None:
        """None if this request now owns the id, else what is stored for it (F|.. / D|..)."""
        return await self.guard.claim(source, message_id, fingerprint, ttl_s)

    async def finish(self, source: str, message_id: str, fingerprint: str, outcome: str,
                     ttl_s: int) -> None:
        await self.guard.finish(source, message_id, fingerprint, outcome, ttl_s)

    async def release(self, source: str, message_id: str) -> None:
        # Best effort: Redis being down is what most likely failed the request; the claim
        # then expires by itself after its ttl.
        with contextlib.suppress(StateUnavailable):
            await self.guard.release(source, message_id)
