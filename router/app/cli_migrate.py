"""``leadrouter migrate-keys``: rename the keys an older version wrote (one hash tag per entity,
``lr:{lead:ID}``) to the current layout (one hash tag per deployment, ``lr:{lr}:lead:ID``;
router/state/keys.py). Run it once, with every writer stopped, before starting this version on
existing data; ``--dry-run`` first lists what it would rename. Idempotent and resumable
(router/state/migrate.py). Redis is found as ``serve`` finds it (``--redis-url`` /
``--data-dir``, else LEADROUTER_REDIS_URL / LEADROUTER_DATA_DIR).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_migrate_keys", "cmd_migrate_keys"]


def add_migrate_keys(sub: Any, *, serve_flag: Any) -> None:
    migrate = sub.add_parser(
        "migrate-keys", help="rename the Redis keys of an older version to the current layout",
        description="Rename every key of the layout before one hash tag per deployment "
        "(PREFIX{lead:ID}, PREFIX{sla}:due, ...) to the current one (PREFIX{TAG}:lead:ID ...), "
        "keeping values and TTLs. Stop the service (every writer) first; run with --dry-run "
        "to see the renames. Safe to run again: renamed keys are skipped. "
        "See docs/operations.md, 'Key layout and migrate-keys'.")
    serve_flag(migrate, "--redis-url", "redis_url", "the service's Redis/Valkey URL",
               metavar="URL")
    serve_flag(migrate, "--data-dir", "data_dir", "the service's data dir (its embedded "
               "Valkey)", metavar="DIR")
    serve_flag(migrate, "--prefix", "key_prefix", "the service's key prefix", metavar="PREFIX")
    migrate.add_argument("--dry-run", action="store_true",
                         help="list what would be renamed; change nothing")
    migrate.add_argument("--batch", type=int, default=1000, metavar="N",
                         help="keys per SCAN step (default 1000)")
    migrate.set_defaults(func=cmd_migrate_keys)


def cmd_migrate_keys(args: argparse.Namespace) -> int:
    import asyncio

    from router.app.cli_replay import Failed, on_store
    from router.settings import Settings
    from router.state.migrate import Migration, migrate_keys

    settings = Settings.from_env(redis_url=args.redis_url, data_dir=args.data_dir,
                                 key_prefix=args.key_prefix)
    verb = "would rename" if args.dry_run else "renamed"

    def rename(old: str, new: str) -> None:
        if args.dry_run:
            print(f"{old} -> {new}")

    def progress(m: Migration) -> None:
        print(f"leadrouter: scanned {m.scanned:,} keys, {verb} {m.renamed:,}", file=sys.stderr)

    async def run(store: Any) -> Migration:
        return await migrate_keys(store, dry_run=args.dry_run, count=args.batch,
                                  on_rename=rename, on_progress=progress)

    try:
        result = asyncio.run(on_store(settings, run))
    except Failed as exc:
        print(f"leadrouter: {exc}", file=sys.stderr)
        return 1
    kinds = ", ".join(f"{kind} {n:,}" for kind, n in sorted(result.kinds.items())) or "none"
    print(f"leadrouter: {verb} {result.renamed:,} keys ({kinds}) under "
          f"{settings.key_prefix!r}; {len(result.conflicts)} conflicts", file=sys.stderr)
    if result.conflicts:
        print("leadrouter: these old keys were left alone because their new name exists "
              "already (a newer service wrote it): " + ", ".join(result.conflicts[:20]) +
              " — stop every service writing to this Redis, delete or merge the new key by "
              "hand, then run migrate-keys again", file=sys.stderr)
        return 1
    return 0
