"""Renaming the keys of the layout before one hash tag per deployment (``lr:{lead:ID}``,
``lr:{sla}:due``, ...) to the current one (``lr:{lr}:lead:ID``, ``lr:{lr}:sla:due``): what
``leadrouter migrate-keys`` runs (router/app/cli_migrate.py, docs/operations.md).

One ``SCAN`` over the old pattern (``PREFIX{*``); each old-layout name (keys.py,
:func:`~router.state.keys.legacy_to_current`) is renamed with ``RENAMENX``, which keeps the
value, its TTL and, for the outbox stream, its consumer groups. A name whose new key exists
already is left alone and reported (a conflict: a new version of the service wrote it — stop
every writer, see docs/operations.md). Idempotent and resumable: a renamed key no longer
matches, so a second run, or one after an interruption, only finds what is left. Single node
only: the old layout never ran on a cluster (its scripts crossed slots).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from router.state.errors import check_reply, translate_errors
from router.state.keys import legacy_to_current
from router.state.store import Store

__all__ = ["Migration", "migrate_keys"]


@dataclass(slots=True)
class Migration:
    scanned: int = 0
    renamed: int = 0  # with dry_run: would be renamed
    conflicts: list[str] = field(default_factory=list)  # old names whose new name exists
    kinds: dict[str, int] = field(default_factory=dict)  # renamed by kind (lead, rep, ...)


def _glob_escape(text: str) -> str:
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


async def migrate_keys(store: Store, *, dry_run: bool = False, count: int = 1000,
                       on_rename: Callable[[str, str], None] | None = None,
                       on_progress: Callable[[Migration], None] | None = None) -> Migration:
    """Rename every old-layout key of ``store``'s prefix (``dry_run``: only report them).
    ``on_rename(old, new)`` per key (renamed, or that would be), ``on_progress`` after each
    SCAN step."""
    keys, wire = store.keys, store.wire
    result = Migration()
    cursor: bytes | int = 0
    while True:
        with translate_errors("migrate keys"):
            cursor, names = await wire.call("SCAN", cursor, "MATCH",
                                            _glob_escape(keys.prefix) + "{*", "COUNT", count)
        pairs = []
        for raw in names:
            result.scanned += 1
            new = legacy_to_current(keys, raw.decode())
            if new is not None:
                pairs.append((raw.decode(), new))
        if pairs and not dry_run:
            with translate_errors("migrate keys"):
                replies = await wire.batch([("RENAMENX", old, new) for old, new in pairs])
        else:
            replies = [1] * len(pairs)
        for (old, new), reply in zip(pairs, replies, strict=True):
            check_reply("migrate keys", reply)
            if reply == 0:  # RENAMENX: the new name exists already
                result.conflicts.append(old)
                continue
            result.renamed += 1
            kind = new[len(keys.base):].split(":", 1)[0]
            result.kinds[kind] = result.kinds.get(kind, 0) + 1
            if on_rename is not None:
                on_rename(old, new)
        if on_progress is not None:
            on_progress(result)
        if cursor in (b"0", 0):
            break
    if result.renamed and not dry_run:
        # An unfinished arrival backfill kept a SCAN cursor of the old names: start it over
        # (it adds with ZADD NX, so seeing a lead twice is harmless).
        with translate_errors("migrate keys"):
            await wire.call("HDEL", keys.arrivals_backfill, "cursor")
    return result
