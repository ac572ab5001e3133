"""The Lua scripts: read from ``lua/*.lua`` once, run by EVALSHA, re-loaded on NOSCRIPT.

Each script is ``_lib.lua`` + its own file, so shared helpers (eligibility above all) exist once;
a script pulls in a further library with a ``--!include NAME.lua`` line (``_pick.lua``: the pool
pick shared by commit, reassign and re-qualification).
The SHA1 is computed locally, so the first call needs no SCRIPT LOAD round trip when the server
already has the script (another worker loaded it); after a server restart or SCRIPT FLUSH the
server answers NOSCRIPT and the script is loaded and the call retried, transparently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from typing import Any, NamedTuple

from router.state.wire import ReplyError, Wire, bulk

__all__ = ["SCRIPT_NAMES", "PackedKeys", "Script", "load_scripts", "pack_keys"]

SCRIPT_NAMES = ("commit", "pool_stats", "release", "transition", "claim_due", "escalate",
                "owner", "outcome", "funnel_fold", "accounts")


class PackedKeys(NamedTuple):
    """Script keys already in RESP form: a pool's keys are packed once per plan and reused."""

    n: int
    blob: bytes


def pack_keys(keys: Iterable[str]) -> PackedKeys:
    frags = [bulk(k) for k in keys]
    return PackedKeys(len(frags), b"".join(frags))


class Script:
    """One script's source and SHA1; calls count their round trips through ``on_round_trip``."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
        self._sha_bulk = bulk(self.sha)

    async def __call__(self, wire: Wire, keys: Sequence[str] | Sequence[PackedKeys],
                       args: Sequence[str | bytes], on_round_trip: Callable[[int], None]) -> Any:
        """EVALSHA with ``keys`` (plain, or PackedKeys parts in order) and ``args``."""
        parts = [k if isinstance(k, PackedKeys) else pack_keys((k,)) for k in keys]
        nkeys = sum(p.n for p in parts)
        packed = b"".join((b"*%d\r\n$7\r\nEVALSHA\r\n" % (3 + nkeys + len(args)),
                           self._sha_bulk, bulk(str(nkeys)), *(p.blob for p in parts),
                           *(bulk(a) for a in args)))
        on_round_trip(1)
        try:
            return await wire.call_packed(packed)
        except ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        # Server restarted or scripts flushed: load and retry (2 more round trips).
        on_round_trip(2)
        await wire.call("SCRIPT", "LOAD", self.source)
        return await wire.call_packed(packed)


_INCLUDE = "--!include "


def _read(name: str) -> str:
    return resources.files("router.state").joinpath("lua", name).read_text(encoding="utf-8")


def _expand(source: str) -> str:
    """Replace each ``--!include NAME.lua`` line with that library's text (once per script:
    a second include of the same library is dropped, so libraries may include each other)."""
    seen: set[str] = set()

    def expand(text: str) -> str:
        out = []
        for line in text.splitlines():
            if line.startswith(_INCLUDE):
                name = line[len(_INCLUDE):].strip()
                if name not in seen:
                    seen.add(name)
                    out.append(expand(_read(name)))
                continue
            out.append(line)
        return "\n".join(out)

    return expand(source)


def load_scripts() -> dict[str, Script]:
    lib = _read("_lib.lua")
    return {name: Script(name, f"{lib}\n{_expand(_read(name + '.lua'))}")
            for name in SCRIPT_NAMES}
