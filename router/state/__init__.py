"""State layer: everything that talks to Redis (store, Lua scripts, embedded server).

See ``store.py`` for the hot path and round trips, ``keys.py`` for the key layout and the
supported topology.
"""

from router.state.errors import StateError, StateUnavailable
from router.state.keys import Keys
from router.state.models import (
    AssignResult,
    Claim,
    ClaimRequest,
    CommitPlan,
    HistoryEntry,
    MemberStats,
    PoolStats,
    Prefetched,
    RepState,
    StoredLead,
    TransitionResult,
)
from router.state.store import ExtraRead, Store, fingerprint

__all__ = [
    "AssignResult",
    "Claim",
    "ClaimRequest",
    "CommitPlan",
    "ExtraRead",
    "HistoryEntry",
    "Keys",
    "MemberStats",
    "PoolStats",
    "Prefetched",
    "RepState",
    "StateError",
    "StateUnavailable",
    "Store",
    "StoredLead",
    "TransitionResult",
    "fingerprint",
]
