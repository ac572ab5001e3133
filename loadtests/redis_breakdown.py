"""Where a leadrouter Redis's memory goes: every key's ``MEMORY USAGE``, by key family.

    uv run python loadtests/redis_breakdown.py redis://127.0.0.1:6379/0 [--prefix lr:]

Prints a Markdown table: per family (lead hashes, their history, idempotency records, the
person index, per-person engagement, its seen ids and aliases, the outbox and SLA streams...) the
keys, the bytes, the bytes per key (per entry for streams) and the TTLs; then the outbox entries
by event type (field bytes of the newest 2,000). ``run_locust.py --breakdown`` runs it at the end
of the load, before the service stops. Read-only (SCAN, MEMORY USAGE, PTTL, XLEN, XREVRANGE);
it costs a few seconds per 100,000 keys, so run it after the load, not during a measurement.
"""

from __future__ import annotations

import argparse
import re
import statistics
from typing import Any

import redis

from router.state.keys import Keys

FAMILIES: list[tuple[str, re.Pattern[str]]] = [(name, re.compile(rx)) for name, rx in [
    ("lead hash `lead:ID`", r"^lead:[^:]*$"),
    ("lead history `lead:ID:history`", r"^lead:[^:]*:history$"),
    ("idempotency `idem:*`", r"^idem:"),
    ("person index `person:*`", r"^person:"),
    ("engagement alias `eng:alias:*`", r"^eng:alias:"),
    ("engagement seen ids `eng:P:seen`", r"^eng:.*:seen$"),
    ("engagement person `eng:P`", r"^eng:"),
    ("outbox stream `outbox`", r"^outbox$"),
    ("outbox dead letters", r"^outbox:dead$"),
    ("SLA facts stream `sla:facts`", r"^sla:facts$"),
    ("SLA schedule `sla:due`", r"^sla:due$"),
    ("queues `queue:*`", r"^queue:"),
    ("reps and pools", r"^(rep|pool):"),
]]


def family(key: str) -> str:
    for name, rx in FAMILIES:
        if rx.search(key):
            return name
    return "other"


def _days(ms: int) -> str:
    if ms < 0:
        return "none"
    seconds = ms / 1000
    if seconds >= 86400:
        return f"{seconds / 86400:.0f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds:.0f} s"


def breakdown(url: str, prefix: str = "lr:", batch: int = 1000) -> str:
    """The Markdown report of the Redis at ``url`` (keys under ``prefix``)."""
    client = redis.Redis.from_url(url, socket_timeout=60)
    try:
        return _report(client, prefix, batch)
    finally:
        client.close()


def _report(client: redis.Redis, prefix: str, batch: int) -> str:
    info: Any = client.info("memory")
    stats: dict[str, dict[str, Any]] = {}
    keys: list[bytes] = []

    def flush() -> None:
        pipe = client.pipeline(transaction=False)
        for k in keys:
            pipe.memory_usage(k, samples=0)
            pipe.pttl(k)
        replies = pipe.execute()
        for i, k in enumerate(keys):
            if replies[2 * i + 1] == -2:  # expired since SCAN listed it
                continue
            name = family(k.decode(errors="replace").removeprefix(Keys(prefix).base))
            s = stats.setdefault(name, {"keys": 0, "bytes": 0, "ttls": [], "names": []})
            s["keys"] += 1
            s["bytes"] += int(replies[2 * i] or 0)
            s["ttls"].append(int(replies[2 * i + 1]))
            s["names"].append(k)
        keys.clear()

    for key in client.scan_iter(match=f"{prefix}*", count=batch):
        keys.append(key)
        if len(keys) >= batch:
            flush()
    flush()
    total = sum(s["bytes"] for s in stats.values())
    lines = [f"Redis at the end of the load: used_memory {info['used_memory'] / 2**20:.1f} MiB "
             f"(dataset {client.memory_stats().get('dataset.bytes', 0) / 2**20:.1f} MiB); "
             f"keys under `{prefix}` {sum(s['keys'] for s in stats.values()):,}, "
             f"{total / 2**20:.1f} MiB by MEMORY USAGE:", "",
             "| keys | count | MiB | bytes each | TTL min / median / max |",
             "|---|---:|---:|---:|---|"]
    for name, s in sorted(stats.items(), key=lambda kv: -kv[1]["bytes"]):
        count, each = s["keys"], s["bytes"] / max(1, s["keys"])
        label = f"{count:,}"
        if "stream" in name and count == 1:
            entries = int(client.xlen(s["names"][0]))
            label, each = f"{entries:,} entries", s["bytes"] / max(1, entries)
            span = _span_s(client, s["names"][0])
            if span:  # how much time the stream holds: its fill rate
                label += f" ({span:,.0f} s, {entries / span:,.0f}/s)"
        ttls = sorted(s["ttls"])
        lines.append(f"| {name} | {label} | {s['bytes'] / 2**20:.1f} | {each:,.0f} | "
                     f"{_days(ttls[0])} / {_days(int(statistics.median(ttls)))} / "
                     f"{_days(ttls[-1])} |")
    lines += ["", _outbox_types(client, prefix)]
    return "\n".join(lines)


def _span_s(client: redis.Redis, key: bytes) -> float:
    """Seconds between a stream's first and last entry ids (0 if fewer than two)."""
    first: Any = client.xrange(key, count=1)
    last: Any = client.xrevrange(key, count=1)
    if not first or not last:
        return 0.0
    t0, t1 = (int(e[0][0].split(b"-")[0]) for e in (first, last))
    return max(0, t1 - t0) / 1000


def _outbox_types(client: redis.Redis, prefix: str, count: int = 2000) -> str:
    """Field bytes of the newest outbox entries, by event type."""
    raw: Any = client.xrevrange(Keys(prefix).outbox, count=count)
    by_type: dict[str, list[int]] = {}
    decision: list[int] = []
    for _, fields in raw:
        size = sum(len(k) + len(v) for k, v in fields.items())
        by_type.setdefault(fields.get(b"type", b"?").decode(), []).append(size)
        if fields.get(b"decision"):
            decision.append(len(fields[b"decision"]))
    if not raw:
        return "The outbox is empty."
    lines = [f"Outbox entries by type (the newest {len(raw):,}; field names and values, "
             f"bytes; the stored decision is {statistics.mean(decision):,.0f} bytes on average "
             f"in the {len(decision):,} that carry one):" if decision else
             f"Outbox entries by type (the newest {len(raw):,}):", "",
             "| type | entries | bytes each (mean) |", "|---|---:|---:|"]
    for etype, sizes in sorted(by_type.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"| `{etype}` | {len(sizes):,} | {statistics.mean(sizes):,.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("url")
    ap.add_argument("--prefix", default="lr:")
    args = ap.parse_args()
    print(breakdown(args.url, args.prefix))


if __name__ == "__main__":
    main()
