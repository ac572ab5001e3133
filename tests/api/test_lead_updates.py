"""``external_id_repeat: update`` over real HTTP and a real Valkey (issue 21, item 9): a known
external_id with other data updates the stored lead and decides it again, through the
re-qualification path (router/services/updates.py); and idempotency records written before
fingerprints were versioned still match their exact retry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from _rules import SERVICE_RULES
from _service import JSON, assert_problem, lead, write_rules

from router.services.decision_input import decode_input

# the default test scoring, plus 30 points for a CTO: 55 + 30 = 85 → sql
_SCORING = SERVICE_RULES["scoring.yaml"].replace(
    "    - {id: bant.budget, when: \"budget >= 50000\", points: 20}\n",
    "    - {id: bant.budget, when: \"budget >= 50000\", points: 20}\n"
    "    - {id: bant.cto, when: 'title == \"CTO\"', points: 30}\n")


@pytest.fixture
def updating(start_service: Callable[..., Any], tmp_path: Path) -> Iterator[httpx.Client]:
    assert "bant.cto" in _SCORING
    rules = write_rules(tmp_path / "rules", {
        "scoring.yaml": _SCORING,
        "intake.yaml": "leads:\n  external_id_repeat: update\n"})
    with start_service(rules_dir=str(rules)).client() as client:
        yield client


def _history(client: httpx.Client, lead_id: str) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = client.get(f"/v1/leads/{lead_id}").json()["history"]
    return history


def test_an_update_re_decides_the_lead_and_a_working_rep_keeps_it(
        updating: httpx.Client) -> None:
    first = updating.post("/v1/leads", json=lead(external_id="crm-1"))
    assert first.status_code == 201, first.text
    d1 = first.json()
    assert (d1["status"], d1["score"]["total"], d1["assignment"]["pool"]) == ("mql", 55, "rr")
    owner = d1["assignment"]["owner"]
    assert owner in {"r1", "r2", "r3"}

    up = updating.post("/v1/leads", json=lead(external_id="crm-1", title="CTO"))
    assert up.status_code == 200, up.text
    d2 = up.json()
    assert d2["updated"] is True and d2["duplicate"] is False
    assert d2["lead_id"] == d1["lead_id"]
    assert up.headers["location"] == f"/v1/leads/{d1['lead_id']}"
    assert (d2["status"], d2["score"]["total"]) == ("sql", 85)
    assert "bant.cto" in {c["rule"] for c in d2["score"]["contributions"]}
    # the status rose while a rep has the lead: the rep keeps it (like re-qualification)
    assert d2["assignment"]["owner"] == owner
    entry = d2["history"][-1]
    assert entry["event"] == "updated"
    assert entry["detail"]["changed"] == ["title"]
    assert (entry["detail"]["from"], entry["detail"]["to"]) == ("mql", "sql")
    assert (entry["detail"]["from_score"], entry["detail"]["score"]) == (55, 85)
    assert updating.get(f"/v1/leads/{d1['lead_id']}").json()["status"] == "sql"

    # the same new data again is a plain duplicate: no second update
    again = updating.post("/v1/leads", json=lead(external_id="crm-1", title="CTO"))
    assert again.status_code == 200
    assert again.json()["duplicate"] is True and again.json()["updated"] is False
    assert [h["event"] for h in _history(updating, d1["lead_id"])].count("updated") == 1


def test_an_update_without_a_rise_keeps_the_owner(updating: httpx.Client) -> None:
    d1 = updating.post("/v1/leads", json=lead(external_id="crm-2")).json()
    up = updating.post("/v1/leads", json=lead(external_id="crm-2", country="DE",
                                              employees=50))
    assert up.status_code == 200, up.text
    d2 = up.json()
    # 55 - 25 (fit.big) - 10 (fit.us) = 20: still mql; territory and segment follow the data
    assert (d2["status"], d2["score"]["total"]) == ("mql", 20)
    assert (d2["territory"], d2["segment"]) == ("other", "smb")
    assert d2["assignment"]["owner"] == d1["assignment"]["owner"]
    entry = d2["history"][-1]
    assert entry["event"] == "updated"
    assert sorted(entry["detail"]["changed"]) == ["country", "employees"]
    assert (entry["detail"]["territory"], entry["detail"]["segment"]) == ("other", "smb")


def test_an_update_that_raises_the_status_of_an_unowned_lead_routes_it(
        updating: httpx.Client) -> None:
    d1 = updating.post("/v1/leads", json=lead(external_id="crm-3", campaign="junk")).json()
    assert (d1["status"], d1["assignment"]["queue"], d1["assignment"]["owner"]) == \
        ("bad_lead", "review", None)
    up = updating.post("/v1/leads", json=lead(external_id="crm-3", campaign="spring"))
    assert up.status_code == 200, up.text
    d2 = up.json()
    assert d2["status"] == "mql" and d2["lead_id"] == d1["lead_id"]
    assert d2["assignment"]["pool"] == "rr" and d2["assignment"]["owner"] in {"r1", "r2", "r3"}
    assert d2["assignment"]["queue"] is None
    assert d2["sla"]["policy"] == "sla-mql" and d2["sla"]["due_at"] is not None
    entry = d2["history"][-1]
    assert entry["event"] == "updated"
    assert entry["detail"]["owner"] == d2["assignment"]["owner"]
    assert entry["detail"]["changed"] == ["campaign"]


def test_an_update_keeps_the_arrival_input_for_the_replay(updating: httpx.Client,
                                                          redis_client: redis.Redis) -> None:
    d1 = updating.post("/v1/leads", json=lead(external_id="crm-4")).json()
    assert updating.post("/v1/leads", json=lead(external_id="crm-4", title="CTO")) \
        .status_code == 200
    raw = redis_client.hget(f"lr:{{lr}}:lead:{d1['lead_id']}", "input")
    assert raw, "the lead keeps what its arrival was decided from"
    arrival = decode_input(raw)
    assert arrival.lead.title == "VP Sales"  # the replay decides the lead as it arrived
    assert (arrival.committed.status, arrival.committed.score) == ("mql", 55)


def test_an_idempotency_key_reused_with_other_data_is_no_update(
        updating: httpx.Client) -> None:
    first = updating.post("/v1/leads", json=lead(external_id="crm-5"),
                          headers={"Idempotency-Key": "k-5"})
    assert first.status_code == 201
    reused = updating.post("/v1/leads", json=lead(external_id="crm-5", title="CTO"),
                           headers={"Idempotency-Key": "k-5"})
    assert_problem(reused, 422)
    assert updating.get(f"/v1/leads/{first.json()['lead_id']}").json()["status"] == "mql"
    # a new key with the update: updated, and that key's retry is a duplicate of it
    up = updating.post("/v1/leads", json=lead(external_id="crm-5", title="CTO"),
                       headers={"Idempotency-Key": "k-6"})
    assert up.status_code == 200 and up.json()["updated"] is True
    retry = updating.post("/v1/leads", json=lead(external_id="crm-5", title="CTO"),
                          headers={"Idempotency-Key": "k-6"})
    assert retry.status_code == 200 and retry.json()["duplicate"] is True


# --- upgrade safety: records written before fingerprints were versioned ------------------------


def _idem_key(client: redis.Redis, lead_id: str, scope: str) -> bytes:
    keys = [k for k in client.scan_iter(match=f"*{scope}*")
            if (client.get(k) or b"").endswith(f"|{lead_id}".encode())]
    assert len(keys) == 1, keys
    return keys[0]


@pytest.mark.parametrize("header", [False, True])
def test_an_old_record_still_matches_its_exact_retry(api: httpx.Client,
                                                     redis_client: redis.Redis,
                                                     header: bool) -> None:
    """A record written before this change holds sha256 of the raw body, unversioned: the
    byte-identical retry is still a duplicate (not 422), other data is still refused."""
    body = json.dumps(lead(external_id="old-1" if not header else None)).encode()
    headers = {**JSON, **({"Idempotency-Key": "old-key"} if header else {})}
    first = api.post("/v1/leads", content=body, headers=headers)
    assert first.status_code == 201, first.text
    lead_id = first.json()["lead_id"]
    key = _idem_key(redis_client, lead_id, "old-key" if header else "old-1")
    assert (redis_client.get(key) or b"").startswith(b"D|v2:")
    ttl = redis_client.pttl(key)
    redis_client.set(key, f"D|{hashlib.sha256(body).hexdigest()}|{lead_id}", px=ttl)

    retry = api.post("/v1/leads", content=body, headers=headers)
    assert retry.status_code == 200, retry.text
    assert retry.json()["duplicate"] is True and retry.json()["lead_id"] == lead_id
    other = json.dumps(lead(external_id="old-1" if not header else None, title="CTO"))
    assert_problem(api.post("/v1/leads", content=other, headers=headers), 422)
