"""The funnel's Lua and Python agree (router/state/funnel.py, lua/_funnel.lua): the dimension
order, the histogram buckets and the blob layout a report adds as big integers."""

from __future__ import annotations

import math
import re
from importlib import resources

import pytest

from router.services.funnel import _quantile, _unpack
from router.state.funnel import bucket_mid_ms
from router.state.keys import FUNNEL_DIMS
from router.state.store import Store

LUA = resources.files("router.state").joinpath("lua/_funnel.lua").read_text()


def test_the_lua_dimensions_are_the_python_ones_in_order() -> None:
    found = re.search(r"local FUNNEL_DIMS = \{([^}]*)\}", LUA)
    assert found is not None
    assert tuple(re.findall(r"'(\w+)'", found.group(1))) == FUNNEL_DIMS


@pytest.mark.anyio
async def test_histogram_blobs_add_as_big_integers(store: Store) -> None:
    """The script's blob (sum u64, then u32 buckets) summed over days as integers gives the
    exact sum and count and quantiles within 4.5% (the bucket's geometric middle)."""
    script = LUA.split("local function funnel_hist", 1)[1].split("\nend\n", 1)[0]
    bucket = LUA.split("local function funnel_bucket", 1)[1].split("\nend\n", 1)[0]
    body = (f"local function funnel_bucket{bucket}\nend\nlocal function funnel_hist{script}\n"
            "end\nfor i = 1, #ARGV do\n  local d = tonumber(ARGV[i])\n"
            "  funnel_hist(KEYS[(i % 2) + 1], 'f', d, funnel_bucket(d))\nend\n")
    values = [1500 + 997 * i ** 2 for i in range(400)]
    keys = [store.keys.funnel("segment", "2026-01-01"), store.keys.funnel("segment",
                                                                           "2026-01-02")]
    await store.wire.call("EVAL", body, 2, *keys, *(str(v) for v in values))
    blobs = [await store.wire.call("HGET", k, "f") for k in keys]
    total, lanes = _unpack(sum(int.from_bytes(b, "little") for b in blobs))
    assert total == sum(values) and sum(lanes) == len(values)
    for q in (0.5, 0.9):
        exact = sorted(values)[math.ceil(q * len(values)) - 1] / 1000
        got = _quantile(lanes, q)
        assert got is not None and abs(got - exact) <= 0.045 * exact
    assert bucket_mid_ms(0) == 500.0
