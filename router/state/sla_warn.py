"""SLA warnings in Redis: the leads due soon, and the once-only ``sla.warning`` event.

:meth:`SlaWarnings.due_between` reads the SLA schedule (``sla:due``, lead ids scored by their
deadline in ms; a breach being escalated holds a fence score instead, which the script tells
apart because the lead's own ``due_at`` differs). :meth:`SlaWarnings.warn` runs
``lua/sla_warn.lua`` for one lead: it checks that the SLA clock still runs on that deadline
and writes the event to the outbox together with the lead's ``sla_warned`` marker, so a lead
is warned about once per deadline however many workers look at it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import Literal

import msgspec

from router.state.errors import translate_errors
from router.state.models import to_ms
from router.state.scripts import Script, _expand, _read
from router.state.store import Store

__all__ = ["SlaWarnings", "WarnGroup", "warn_script"]


class WarnGroup(msgspec.Struct, frozen=True):
    """One warning time and the SLA policies it is for: ``in`` ``policies``, or every policy
    ``out`` of them (the service default), or ``all``."""

    before_ms: int
    mode: Literal["in", "out", "all"]
    policies: tuple[str, ...] = ()


def warn_script() -> Script:
    return Script("sla_warn", f"{_read('_lib.lua')}\n{_expand(_read('sla_warn.lua'))}")


_SCRIPT = warn_script()


class SlaWarnings:
    """The warning operations on one :class:`Store` (sharing its connection)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.keys = store.keys

    async def due_between(self, low_ms: int, high_ms: int, *, offset: int,
                          count: int) -> list[tuple[str, int]]:
        """``(lead id, score)`` of the schedule entries scored in ``[low, high]`` (ms), in
        score order, ``count`` from ``offset`` (one round trip)."""
        with translate_errors("sla_warn_due"):
            self.store.round_trips += 1
            flat = await self.store.wire.call(
                "ZRANGEBYSCORE", self.keys.sla_due, low_ms, high_ms, "WITHSCORES", "LIMIT",
                offset, count)
        return [(flat[i].decode(), int(float(flat[i + 1]))) for i in range(0, len(flat), 2)]

    async def warn(self, lead_id: str, due_ms: int, now: dt.datetime, group: WarnGroup) -> str:
        """Warn about ``lead_id``'s deadline ``due_ms`` if its policy is one of ``group``'s,
        its clock still runs on it, it was set at least ``group.before_ms`` ahead and was not
        warned about yet: ``warned``, else why not (see lua/sla_warn.lua)."""
        keys = [self.keys.lead(lead_id), self.keys.outbox]
        args = [lead_id, str(due_ms), str(to_ms(now)), str(self.store.outbox_maxlen),
                str(group.before_ms), group.mode, ",".join(group.policies)]
        with translate_errors("sla_warn"):
            reply = await _SCRIPT(self.store.wire, keys, args, self.store._count)
        return reply.decode() if isinstance(reply, bytes) else str(reply)

    async def warn_all(self, entries: Sequence[tuple[str, int]], now: dt.datetime,
                       group: WarnGroup) -> list[str]:
        """:meth:`warn` for each entry, pipelined (one write for the batch)."""
        return list(await asyncio.gather(*(self.warn(i, due, now, group)
                                           for i, due in entries)))
