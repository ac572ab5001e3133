"""The Redis key layout (router/state/keys.py): every name carries the prefix and the hash tag
of its entity, and the names Python builds are the keys the Lua scripts read and write."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import redis

from router.engine.availability import MemberPlan, PoolPlan
from router.state import ClaimRequest, CommitPlan, Keys, Store, fingerprint
from router.state.keys import DAY_TTL_S

DAY = "2026-03-02"
NOW = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
POOL = PoolPlan(id="p", strategy="round_robin", pool_cap=-1, day=DAY,
                members=(MemberPlan("a", 1, True, DAY, -1), MemberPlan("b", 1, True, DAY, -1)))


def test_every_name_is_prefixed_and_hash_tagged() -> None:
    k = Keys("t:")
    expected = {
        k.pool("p"): "t:{pool:p}",
        k.pool_day("p", DAY): "t:{pool:p}:day:2026-03-02",
        k.rep("r"): "t:{rep:r}",
        k.rep_day("r", DAY): "t:{rep:r}:day:2026-03-02",
        k.rep_open("r"): "t:{rep:r}:open",
        k.queue("triage"): "t:{queue:triage}",
        k.account("acme.com"): "t:{account:acme.com}",
        k.lead("L1"): "t:{lead:L1}",
        k.history("L1"): "t:{lead:L1}:history",
        k.idempotency("key:web", "abc"): "t:{idem:key:web:abc}",
        k.engagement("e:h"): "t:{eng:e:h}",
        k.engagement_seen("e:h"): "t:{eng:e:h}:seen",
        k.engagement_alias("a:h"): "t:{eng:alias:a:h}",
        k.ratelimit("key:k1"): "t:{rl:key:k1}",
        k.webhook("hubspot", "m1"): "t:{wh:hubspot:m1}",
        k.person("sha"): "t:{person:sha}",
        k.api_keys: "t:{apikeys}",
        k.erasures: "t:{erasures}",
        k.outbox: "t:{outbox}",
        k.outbox_dead: "t:{outbox}:dead",
        k.sla_due: "t:{sla}:due",
        k.sla_facts: "t:{sla}:facts",
    }
    for built, want in expected.items():
        assert built == want
    # one hash tag, right after the prefix: a Cluster port would hash exactly the entity
    for name in expected:
        assert re.fullmatch(r"t:\{[^{}]+\}(:[^{}]+)?", name), name
    # the lead and its history share a slot, as the rep and its counters do
    assert k.lead("L1").removeprefix("t:") in k.history("L1")
    assert k.rep("r") in k.rep_day("r", DAY) and k.rep("r") in k.rep_open("r")
    assert DAY_TTL_S == 2 * 86400


def test_default_prefix_and_account_names_are_normalised() -> None:
    k = Keys()
    assert k.prefix == "lr:" and k.lead("x") == "lr:{lead:x}"
    for spelling in ("acme.com", "ACME.com", " Acme.Com. ", "acme.com."):
        assert k.account(spelling) == "lr:{account:acme.com}", spelling
    assert k.account("acme.co") != k.account("acme.com")


def test_memoised_names_never_leak_between_prefixes() -> None:
    one, two = Keys("one:"), Keys("two:")
    assert one.rep("r") == "one:{rep:r}" and two.rep("r") == "two:{rep:r}"
    assert one.pool_day("p", DAY) == "one:{pool:p}:day:2026-03-02"
    assert two.pool_day("p", DAY) == "two:{pool:p}:day:2026-03-02"
    assert one.queue("q") is one.queue("q")  # memoised per instance
    assert one.queue("q") != two.queue("q")


@pytest.mark.anyio
async def test_the_scripts_use_the_names_keys_py_builds(redis_url: str,
                                                       redis_client: redis.Redis) -> None:
    store = await Store.connect(redis_url, prefix="t:")
    try:
        k = store.keys
        # Written by hand where keys.py says a rep's state lives: the commit script must read
        # it there and skip "a", who is away for good.
        redis_client.hset(k.rep("a"), mapping={"status": "away", "until": 2**52, "at": 0})
        got = await store.prefetch([ClaimRequest(scope="key:web", key="idem-1",
                                                 fingerprint=fingerprint(b"{}"), lead_id="L1")])
        result = await store.commit(CommitPlan(lead_id="L1", now=NOW, kind="pool",
                                               decision=b"{}", chain=(POOL,),
                                               claims=got.owned_claims))
        assert (result.status, result.owner, result.pool) == ("assigned", "b", "p")
        queued = await store.commit(CommitPlan(lead_id="L2", now=NOW, kind="queue",
                                               queue="triage", decision=b"{}"))
        assert queued.status == "queued"
    finally:
        await store.close()

    names = {n.decode() for n in redis_client.scan_iter(count=1000)}
    assert all(n.startswith("t:{") for n in names), names  # nothing outside the prefix
    assert {k.lead("L1"), k.history("L1"), k.pool("p"), k.pool_day("p", DAY), k.rep("a"),
            k.rep_day("b", DAY), k.rep_open("b"), k.idempotency("key:web", "idem-1"),
            k.lead("L2"), k.history("L2"), k.queue("triage")} <= names
    assert redis_client.get(k.pool_day("p", DAY)) == b"1"
    assert redis_client.get(k.rep_day("b", DAY)) == b"1"
    assert redis_client.zscore(k.rep_open("b"), "L1") is not None
    assert redis_client.zscore(k.queue("triage"), "L2") is not None
    assert redis_client.get(k.idempotency("key:web", "idem-1")).decode().startswith("D|")
    assert k.rep_day("a", DAY) not in names  # the away rep got nothing
    assert 0 < redis_client.ttl(k.pool_day("p", DAY)) <= DAY_TTL_S
