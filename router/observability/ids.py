"""Random identifiers without a system call each: lead ids, request ids.

``os.urandom`` is read in blocks of 256 values: one ``getrandom()`` instead of one per lead and
one per request (a system call costs a virtual machine more than the rest of the id). The
values are the kernel's random bytes all the same, and a forked child empties the block it
inherited, so it never hands out its parent's values.
"""

from __future__ import annotations

import os

__all__ = ["random_hex"]

_BLOCK = 256
_RANDOM: list[str] = []
os.register_at_fork(after_in_child=_RANDOM.clear)


def random_hex() -> str:
    """24 random hex digits (96 bits)."""
    try:
        return _RANDOM.pop()  # atomic: two threads never get the same value
    except IndexError:
        block = os.urandom(12 * _BLOCK).hex()
        _RANDOM.extend(block[i:i + 24] for i in range(24, len(block), 24))
        return block[:24]
