"""router/state/_oneshot.py first_answer: the discovery loop the sentinels and the cluster share
(their real servers are in test_ha_sentinel.py and test_ha_cluster.py)."""

from __future__ import annotations

import asyncio

import pytest

from router.state._oneshot import first_answer

pytestmark = pytest.mark.anyio


async def test_the_first_peer_to_answer_wins_and_is_asked_first_next_time() -> None:
    peers = [("a", 1), ("b", 2), ("c", 3)]
    asked: list[str] = []

    async def ask(host: str, port: int) -> str:
        asked.append(host)
        if host == "a":
            raise ConnectionRefusedError("refused")
        if host == "b":
            await asyncio.sleep(1)  # never answers within the timeout
        return f"{host} says hi"

    assert await first_answer(peers, ask, timeout=0.01, none="nobody") == "c says hi"
    assert asked == ["a", "b", "c"] and peers == [("c", 3), ("a", 1), ("b", 2)]
    asked.clear()
    assert await first_answer(peers, ask, timeout=0.01, none="nobody") == "c says hi"
    assert asked == ["c"]


async def test_none_answering_names_what_each_said_and_peers_learned_are_kept() -> None:
    peers = [("seed", 7000)]

    async def ask(host: str, port: int) -> str:
        if host == "seed":
            peers.append(("learned", 7001))  # a cluster map naming another node
        raise ConnectionError(f"no node serves slot 5 ({host})")

    with pytest.raises(ConnectionError) as caught:
        await first_answer(peers, ask, timeout=1, none="no cluster node named the primary")
    assert str(caught.value) == ("no cluster node named the primary (seed:7000: no node serves "
                                 "slot 5 (seed))")
    assert peers == [("seed", 7000), ("learned", 7001)]  # asked from the next call on
