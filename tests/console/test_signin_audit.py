"""The console's sign-ins, failed sign-ins and sign-outs in the audit log (real service and
Valkey): who (the admin token or the key id), from which address, and never the token — a
failed attempt keeps an API key's public prefix only. ``GET /v1/admin/audit`` filters by the
new actions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from _console import create_key, csrf_of, sign_in
from _service import ADMIN_TOKEN, AUTH


def _entries(c: Any, action: str) -> list[dict[str, Any]]:
    r = c.get("/v1/admin/audit", params={"action": action}, headers=AUTH)
    assert r.status_code == 200, r.text
    entries: list[dict[str, Any]] = r.json()["entries"]
    return entries


def test_signins_failures_and_signouts_are_audited(start_service: Callable[..., Any]) -> None:
    server = start_service()
    with server.client() as api, server.client() as c:
        key, key_id = create_key(api, AUTH, "viewer", name="Ana")
        wrong = "lrk_" + "x" * 43
        assert sign_in(c, wrong).status_code == 401
        assert sign_in(c, "an admin token with a typo").status_code == 401
        assert sign_in(c, key).status_code == 303
        c.post("/ui/logout", data={"_csrf": csrf_of(c.get("/ui/status").text)})
        assert sign_in(c, ADMIN_TOKEN).status_code == 303

        signins = _entries(api, "console.signin")
        assert [(e["actor"], e["details"]["role"]) for e in signins] == [
            ("console:admin-token", "admin"), (f"console:{key_id}", "viewer")]
        assert all(e["details"]["address"] == "127.0.0.1" for e in signins)
        assert [e["actor"] for e in _entries(api, "console.signout")] == [f"console:{key_id}"]
        failed = _entries(api, "console.signin_failed")
        assert [(e["actor"], e["details"]["key_prefix"], e["details"]["address"])
                for e in failed] == [("anonymous", None, "127.0.0.1"),
                                     ("anonymous", "lrk_xxxx", "127.0.0.1")]
        # no entry holds a token, a key or more of one than its public prefix
        everything = api.get("/v1/admin/audit", params={"limit": 200}, headers=AUTH).text
        for secret in (key, wrong, ADMIN_TOKEN, "typo", "lrk_xxxxx"):
            assert secret not in everything
        assert json.loads(everything)["entries"]
