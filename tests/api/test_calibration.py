"""``GET /v1/scoring/calibration`` over the real service: what counts as converted (the
target stage or a later one of the chain; an exit such as ``lost`` never), speed to lead from
the owner's accept, the pool a lead went to; an erased lead is not counted. The large
ground-truth dataset is tests/services/test_tune.py."""

from __future__ import annotations

from typing import Any

import httpx
from _service import AUTH, lead


def _post(api: httpx.Client, i: int, **fields: Any) -> dict[str, Any]:
    r = api.post("/v1/leads", json=lead(email=f"buyer{i}@corp{i}.example", **fields),
                 headers=AUTH)
    assert r.status_code == 201, r.text
    decision: dict[str, Any] = r.json()
    return decision


def _outcome(api: httpx.Client, lead_id: str, stage: str) -> None:
    r = api.post(f"/v1/leads/{lead_id}/outcome", json={"stage": stage}, headers=AUTH)
    assert r.status_code == 201, r.text


def test_conversion_follows_the_funnel_chain_and_speed_the_accept(api: httpx.Client) -> None:
    won, opportunity, lost, meeting, plain = (_post(api, i) for i in range(5))
    _outcome(api, won["lead_id"], "won")  # won implies opportunity
    _outcome(api, opportunity["lead_id"], "opportunity")
    _outcome(api, lost["lead_id"], "lost")  # an exit implies nothing
    _outcome(api, meeting["lead_id"], "meeting")  # before the target
    owner = won["assignment"]["owner"]
    assert owner, won["assignment"]
    accepted = api.post(f"/v1/leads/{won['lead_id']}/accept", json={"rep": owner},
                        headers=AUTH)
    assert accepted.status_code == 200, accepted.text
    gone = _post(api, 9)
    assert api.delete(f"/v1/leads/{gone['lead_id']}", headers=AUTH).status_code in (200, 204)

    report = api.get("/v1/scoring/calibration", headers=AUTH).json()
    assert (report["target"], report["leads"], report["converted"]) == ("opportunity", 5, 2)
    assert report["skipped"] == 0  # the erased lead left the arrival index with its data
    grade = won["score"]["grade"]
    assert all(d["score"]["grade"] == grade for d in (opportunity, lost, meeting, plain))
    assert {c["group"]: c["leads"] for c in report["by_speed"]} == {
        "< 5 min": 1, "not touched": 4}
    pools = {c["group"]: c["leads"] for c in report["by_pool"]}
    assert sum(pools.values()) == 5 and won["assignment"]["pool"] in pools

    won_only = api.get("/v1/scoring/calibration", params={"target": "won"},
                       headers=AUTH).json()
    assert (won_only["target"], won_only["converted"]) == ("won", 1)
    meeting_on = api.get("/v1/scoring/calibration", params={"target": "meeting"},
                         headers=AUTH).json()
    assert meeting_on["converted"] == 3  # meeting, and the two beyond it
