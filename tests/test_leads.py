"""router/leads.py helpers: lead ids (time-ordered, 96 random bits, never shared with a fork)."""

from __future__ import annotations

import os
import re
import time

from router import leads
from router.leads import new_lead_id

ID = re.compile(r"ld_[0-9a-f]{12}[0-9a-f]{24}")


def test_ids_are_unique_and_time_ordered_across_random_blocks() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_lead_id() for _ in range(3 * 256 + 7)]  # crosses several refills
    after = time.time_ns() // 1_000_000
    assert all(ID.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert len({i[15:] for i in ids}) == len(ids)  # the random parts alone are unique too
    assert all(before <= int(i[3:15], 16) <= after for i in ids)


def test_a_forked_child_never_reuses_the_parents_random_block() -> None:
    new_lead_id()  # the parent now holds a block of unused values
    assert leads._RANDOM
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its next ids and leave at once
        os.close(read)
        os.write(write, " ".join(new_lead_id()[15:] for _ in range(20)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)
    parent = {new_lead_id()[15:] for _ in range(20)}
    assert len(child) == 20
    assert not child & parent
