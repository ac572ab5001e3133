"""The Redis key layout (router/state/keys.py): every name carries the prefix and the one hash
tag of its deployment, and the names Python builds are the keys the Lua scripts read and write."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import redis

from router.engine.availability import MemberPlan, PoolPlan
from router.state import ClaimRequest, CommitPlan, Keys, Store, fingerprint
from router.state.keys import DAY_TTL_S, hash_tag, legacy_to_current

DAY = "2026-03-02"
NOW = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
POOL = PoolPlan(id="p", strategy="round_robin", pool_cap=-1, day=DAY,
                members=(MemberPlan("a", 1, True, DAY, -1), MemberPlan("b", 1, True, DAY, -1)))


def test_every_name_carries_the_one_hash_tag_of_its_prefix() -> None:
    k = Keys("t:")
    expected = {
        k.pool("p"): "t:{t}:pool:p",
        k.pool_day("p", DAY): "t:{t}:pool:p:day:2026-03-02",
        k.rep("r"): "t:{t}:rep:r",
        k.rep_day("r", DAY): "t:{t}:rep:r:day:2026-03-02",
        k.rep_open("r"): "t:{t}:rep:r:open",
        k.queue("triage"): "t:{t}:queue:triage",
        k.account("acme.com"): "t:{t}:account:acme.com",
        k.lead("L1"): "t:{t}:lead:L1",
        k.history("L1"): "t:{t}:lead:L1:history",
        k.idempotency("key:web", "abc"): "t:{t}:idem:key:web:abc",
        k.engagement("e:h"): "t:{t}:eng:e:h",
        k.engagement_seen("e:h"): "t:{t}:eng:e:h:seen",
        k.engagement_alias("a:h"): "t:{t}:eng:alias:a:h",
        k.ratelimit("key:k1"): "t:{t}:rl:key:k1",
        k.webhook("hubspot", "m1"): "t:{t}:wh:hubspot:m1",
        k.person("sha"): "t:{t}:person:sha",
        k.api_keys: "t:{t}:apikeys",
        k.erasures: "t:{t}:erasures",
        k.outbox: "t:{t}:outbox",
        k.outbox_dead: "t:{t}:outbox:dead",
        k.sla_due: "t:{t}:sla:due",
        k.sla_facts: "t:{t}:sla:facts",
        k.rules_generation: "t:{t}:rules:generation",
        k.shadow("last"): "t:{t}:shadow:last",
        k.arrivals: "t:{t}:leads:arrivals",
    }
    for built, want in expected.items():
        assert built == want
    # one hash tag per deployment, right after the prefix: Cluster hashes only ``t``
    for name in expected:
        assert re.fullmatch(r"t:\{t\}:[^{}]+", name), name
    assert DAY_TTL_S == 2 * 86400
    assert (k.lead_id(k.lead("ld_1")), k.lead_id(k.history("ld_1"))) == ("ld_1", None)
    assert k.lead_id(Keys("u:").lead("ld_1")) is None


def test_the_tag_is_the_prefix_without_its_colon() -> None:
    assert [hash_tag(p) for p in ("lr:", "acme:", "a{b}:", "", "x")] == ["lr", "acme", "ab",
                                                                          "lr", "x"]
    assert Keys("acme:").lead("L") == "acme:{acme}:lead:L"


def test_old_layout_names_map_to_the_new_ones_once() -> None:
    k = Keys()
    pairs = {"lr:{lead:L1}": "lr:{lr}:lead:L1", "lr:{lead:L1}:history": "lr:{lr}:lead:L1:history",
             "lr:{lead:we}ird}": "lr:{lr}:lead:we}ird",  # an id with a brace survives
             "lr:{rep:r}:day:2026-03-02": "lr:{lr}:rep:r:day:2026-03-02",
             "lr:{sla}:due": "lr:{lr}:sla:due", "lr:{outbox}": "lr:{lr}:outbox",
             "lr:{eng:alias:a:h}": "lr:{lr}:eng:alias:a:h", "lr:{apikeys}": "lr:{lr}:apikeys",
             "lr:{shadow}:last": "lr:{lr}:shadow:last",
             "lr:{rules}:generation": "lr:{lr}:rules:generation",
             "lr:{leads}:arrivals:backfill": "lr:{lr}:leads:arrivals:backfill"}
    for old, new in pairs.items():
        assert legacy_to_current(k, old) == new, old
        assert legacy_to_current(k, new) is None  # already current: left alone
    for other in ("lr:{unknown}", "other:{lead:L1}", "lr:plain", "ha-test:probe"):
        assert legacy_to_current(k, other) is None, other


def test_default_prefix_and_account_names_are_normalised() -> None:
    k = Keys()
    assert k.prefix == "lr:" and k.lead("x") == "lr:{lr}:lead:x"
    for spelling in ("acme.com", "ACME.com", " Acme.Com. ", "acme.com."):
        assert k.account(spelling) == "lr:{lr}:account:acme.com", spelling
    assert k.account("acme.co") != k.account("acme.com")


def test_memoised_names_never_leak_between_prefixes() -> None:
    one, two = Keys("one:"), Keys("two:")
    assert one.rep("r") == "one:{one}:rep:r" and two.rep("r") == "two:{two}:rep:r"
    assert one.pool_day("p", DAY) == "one:{one}:pool:p:day:2026-03-02"
    assert two.pool_day("p", DAY) == "two:{two}:pool:p:day:2026-03-02"
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
    assert all(n.startswith("t:{t}:") for n in names), names  # all in the one slot
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


def test_no_module_of_the_state_layer_builds_a_key_outside_keys_py() -> None:
    """Key names come from Keys (the one hash tag per deployment is applied there); a name
    put together elsewhere from the prefix would land in another slot on a cluster."""
    state = Path(__file__).resolve().parents[2] / "router" / "state"
    building = re.compile(r"\{[\w.]*\b(prefix|base)\}|\b(prefix|base) *\+ *[\"']")
    found = [f"{path.name}: {m.group(0)}" for path in state.rglob("*.py")
             if path.name != "keys.py" for m in building.finditer(path.read_text("utf-8"))]
    assert found == []
    assert building.search('f"{store.keys.prefix}{{rules}}:generation"')  # it can fail
