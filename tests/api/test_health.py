"""The health probes over real HTTP (router/api/health.py)."""

from __future__ import annotations

import httpx


def test_livez_and_readyz(api: httpx.Client) -> None:
    live = api.get("/livez")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"rules": True, "redis": True}
    assert len(body["rules_version"]) == 64
