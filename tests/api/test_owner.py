"""Who may act as a lead's owner (router/api/owner.py, router/api/auth.py): a rep's own key
(scope ``owner``, bound to the rep) or the admin token acting for any rep, recorded in the
history. With neither a token nor keys configured the actions stay open (a trial install)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from _service import AUTH, assert_problem, lead


def _key(client: httpx.Client, **body: Any) -> str:
    made = client.post("/v1/admin/keys", headers=AUTH, json={"source": "*", **body})
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    return key


def _routed(client: httpx.Client, email: str) -> tuple[str, str]:
    made = client.post("/v1/leads", json=lead(email=email))
    assert made.status_code == 201, made.text
    decision = made.json()
    owner = decision["assignment"]["owner"]
    assert owner, decision
    return decision["lead_id"], owner


def test_owner_actions_need_the_reps_own_key_or_the_admin_token(
        start_service: Callable[..., Any]) -> None:
    with start_service().client() as client:
        lead_id, owner = _routed(client, "owned@acme.example")
        other = next(r for r in ("r1", "r2", "r3") if r != owner)
        mine, theirs = _key(client, scopes=["owner"], rep=owner), \
            _key(client, scopes=["owner"], rep=other)
        intake = _key(client, scopes=["intake"])
        accept = f"/v1/leads/{lead_id}/accept"
        reject = f"/v1/leads/{lead_id}/reject"
        as_owner = {"rep": owner}

        # no credentials, or the rep's name alone: 401, nothing changes
        for path, body in ((accept, as_owner), (reject, {**as_owner, "reason": "spam"})):
            got = assert_problem(client.post(path, json=body), 401)
            assert "'owner'" in got["detail"]
            assert_problem(client.post(path, json=body,
                                       headers={"X-API-Key": "lrk_unknown"}), 401)
        # another rep's key may not act as this rep, not even naming itself truthfully
        denied = assert_problem(client.post(reject, json={**as_owner, "reason": "spam"},
                                            headers={"X-API-Key": theirs}), 403)
        assert other in denied["detail"] and owner in denied["detail"]
        assert client.post(accept, json={"rep": other},
                           headers={"X-API-Key": theirs}).status_code == 409  # not its lead
        # a key without the owner scope: 403 naming it
        assert "'owner'" in assert_problem(client.post(accept, json=as_owner,
                                                       headers={"X-API-Key": intake}),
                                           403)["detail"]
        stored = client.get(f"/v1/leads/{lead_id}").json()
        assert [h["event"] for h in stored["history"]][-1] != "recycled"
        assert stored["sla"]["state"] != "met"

        # the rep's own key: accepted, recorded with the key that acted
        ok = client.post(accept, json=as_owner, headers={"Authorization": f"Bearer {mine}"})
        assert ok.status_code == 200, ok.text
        entry = ok.json()["history"][-1]
        assert entry["event"] == "accepted" and entry["detail"]["by"] == owner
        assert entry["detail"]["via"].startswith("key_")

        # the admin token acts for any rep, and the history says so
        done = client.post(reject, json={**as_owner, "reason": "no_budget"}, headers=AUTH)
        assert done.status_code == 200, done.text
        entry = done.json()["history"][-1]
        assert entry["event"] == "recycled"
        assert (entry["detail"]["by"], entry["detail"]["via"]) == (owner, "admin-token")


def test_owner_keys_are_bound_to_one_rep(start_service: Callable[..., Any]) -> None:
    with start_service().client() as client:
        for body in ({"source": "*", "scopes": ["owner"]},  # an owner key needs its rep
                     {"source": "*", "scopes": ["intake"], "rep": "r1"}):  # rep: owner only
            got = assert_problem(client.post("/v1/admin/keys", headers=AUTH, json=body), 422)
            assert got["errors"][0]["path"] == "$.rep", got
        made = client.post("/v1/admin/keys", headers=AUTH,
                           json={"source": "*", "scopes": ["owner"], "rep": "r2"})
        assert made.status_code == 201 and made.json()["rep"] == "r2", made.text
        rotated = client.post(f"/v1/admin/keys/{made.json()['id']}/rotate", headers=AUTH)
        assert rotated.json()["rep"] == "r2", rotated.text


def test_owner_actions_stay_open_without_a_token_or_keys(
        start_service: Callable[..., Any]) -> None:
    with start_service(admin_token=None).client() as client:
        lead_id, owner = _routed(client, "open@acme.example")
        ok = client.post(f"/v1/leads/{lead_id}/accept", json={"rep": owner})
        assert ok.status_code == 200, ok.text
        assert "via" not in ok.json()["history"][-1]["detail"]
