"""The Lua scripts: read from ``lua/*.lua`` once, run by EVALSHA, re-loaded on NOSCRIPT.

Each script is ``_lib.lua`` + its own file, so shared helpers (eligibility above all) exist once.
The SHA1 is computed locally, so the first call needs no SCRIPT LOAD round trip when the server
already has the script (another worker loaded it); after a server restart or SCRIPT FLUSH the
server answers NOSCRIPT and the script is loaded and the call retried, transparently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

import redis.asyncio
from redis import exceptions as rx

__all__ = ["SCRIPT_NAMES", "Script", "command", "load_scripts"]

SCRIPT_NAMES = ("commit", "pool_stats", "release", "transition")

EncodableArg = str | bytes | int | float


async def command(client: redis.asyncio.Redis, *args: EncodableArg, **options: Any) -> Any:
    """One command, typed (redis-py's ``execute_command`` is not), with redis-py's reply
    parsing. Lower-level than the named methods: less Python per call on the hot path."""
    return await client.execute_command(*args, **options)  # type: ignore[no-untyped-call]


class Script:
    """One script's source and SHA1; calls count their round trips through ``on_round_trip``."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, client: redis.asyncio.Redis, keys: Sequence[str],
                       args: Sequence[EncodableArg], on_round_trip: Callable[[int], None]) -> Any:
        on_round_trip(1)
        try:
            return await command(client, "EVALSHA", self.sha, len(keys), *keys, *args)
        except rx.NoScriptError:
            # Server restarted or scripts flushed: load and retry once (2 more round trips).
            on_round_trip(2)
            await command(client, "SCRIPT", "LOAD", self.source)
            return await command(client, "EVALSHA", self.sha, len(keys), *keys, *args)


def _read(name: str) -> str:
    return resources.files("router.state").joinpath("lua", name).read_text(encoding="utf-8")


def load_scripts() -> dict[str, Script]:
    lib = _read("_lib.lua")
    return {name: Script(name, f"{lib}\n{_read(name + '.lua')}") for name in SCRIPT_NAMES}
