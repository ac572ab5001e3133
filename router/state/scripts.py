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

from router.state.wire import Arg, ReplyError, Wire

__all__ = ["SCRIPT_NAMES", "Script", "load_scripts"]

SCRIPT_NAMES = ("commit", "pool_stats", "release", "transition")


class Script:
    """One script's source and SHA1; calls count their round trips through ``on_round_trip``."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, wire: Wire, keys: Sequence[str], args: Sequence[Arg],
                       on_round_trip: Callable[[int], None]) -> Any:
        on_round_trip(1)
        try:
            return await wire.call("EVALSHA", self.sha, len(keys), *keys, *args)
        except ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        # Server restarted or scripts flushed: load and retry (2 more round trips).
        on_round_trip(2)
        await wire.call("SCRIPT", "LOAD", self.source)
        return await wire.call("EVALSHA", self.sha, len(keys), *keys, *args)


def _read(name: str) -> str:
    return resources.files("router.state").joinpath("lua", name).read_text(encoding="utf-8")


def load_scripts() -> dict[str, Script]:
    lib = _read("_lib.lua")
    return {name: Script(name, f"{lib}\n{_read(name + '.lua')}") for name in SCRIPT_NAMES}
