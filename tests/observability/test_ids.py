"""router/observability/ids.py: random hex from pooled os.urandom blocks, never shared with a
forked child."""

from __future__ import annotations

import os
import re

from router.observability import ids
from router.observability.ids import random_hex


def test_values_are_24_hex_digits_and_unique_across_blocks() -> None:
    values = [random_hex() for _ in range(3 * 256 + 7)]  # crosses several refills
    assert all(re.fullmatch(r"[0-9a-f]{24}", v) for v in values)
    assert len(set(values)) == len(values)


def test_a_forked_child_never_reuses_the_parents_block() -> None:
    random_hex()
    if not ids._RANDOM:  # that call took the block's last value (1 in 256): refill it
        random_hex()
    assert ids._RANDOM  # the parent now holds a block of unused values
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its next values and leave at once
        os.close(read)
        os.write(write, " ".join(random_hex() for _ in range(20)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)
    parent = {random_hex() for _ in range(20)}
    assert len(child) == 20
    assert not child & parent
