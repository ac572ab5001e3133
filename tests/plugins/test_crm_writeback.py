"""The CRM owner write-back plugins end to end: a lead posted to the real service → the outbox
→ on_event → the owner written into a local HubSpot / Salesforce (tests/_crm.py, real HTTP).
A CRM outage never delays routing and loses no update; a bad mapping ends in the dead-letter
stream at once, naming the rep; the event alone finds the record (another worker, a restart);
every delivery is counted in leadrouter_notifications_total."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import httpx
import redis
from _crm import HubSpot, Salesforce
from _ops import metric_value
from _service import ADMIN_TOKEN, ServiceProcess, ThreadServer, lead, write_rules
from leadrouter_hubspot_owner import HubSpotOwnerPlugin

from router.app.application import create_app
from router.plugins.host import PluginHost
from router.settings import Settings

TOKEN = "pat-na1-00000000-test"
REPS = ("r1", "r2", "r3")
HS_OWNERS = {rep: str(100 + i) for i, rep in enumerate(REPS)}
LEAD_A = "00Q5e00000AbCdEAAA"
SF_USERS = {rep: f"0055e00000{i}AbCdAAA" for i, rep in enumerate(REPS)}


def _server(redis_url: str, rules: Path, plugin: Any, name: str,
            max_attempts: int = 12) -> ThreadServer:
    host = PluginHost(event_budget=3.0, breaker_threshold=50, breaker_cooldown=0.3)
    host.register(plugin, name)
    settings = Settings(redis_url=redis_url, admin_token=ADMIN_TOKEN, reload_poll_seconds=0,
                        rules_dir=str(rules), outbox_poll_seconds=0.02,
                        outbox_retry_seconds=0.05, outbox_retry_max_seconds=0.2,
                        outbox_max_attempts=max_attempts)
    return ThreadServer(create_app(settings, plugins=host)).start()


def _counts(client: httpx.Client, channel: str) -> dict[str, float]:
    """``leadrouter_notifications_total`` of ``channel`` by outcome, scraped from /metrics."""
    text = client.get("/metrics").text
    return {o: metric_value(text, "leadrouter_notifications_total", channel=channel, outcome=o)
            for o in ("delivered", "retried", "dead")}


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {o: after[o] - before[o] for o in after}


def _hubspot() -> HubSpot:
    return HubSpot(TOKEN, owners=set(HS_OWNERS.values()),
                   contacts={str(500 + i): f"lead{i}@acme-corp.example" for i in range(8)})


def test_lead_posted_owner_written_to_hubspot(redis_url: str, tmp_path: Path) -> None:
    crm = _hubspot()
    with crm.api:
        plugin = HubSpotOwnerPlugin(TOKEN, HS_OWNERS, base_url=crm.api.url, tasks=True)
        server = _server(redis_url, write_rules(tmp_path / "rules"), plugin, "hubspot-owner")
        try:
            with server.client() as client:
                by_email = client.post("/v1/leads", json=lead(
                    email="lead1@acme-corp.example")).json()
                by_id = client.post("/v1/leads", json=lead(
                    email="other@elsewhere.example", external_id="hubspot:62515:503")).json()
            crm.api.wait_for(lambda _: len(crm.tasks) == 2)
        finally:
            server.stop()
    # the email found contact 501; the HubSpot id the lead came with named 503 (no search)
    assert crm.contacts["501"]["hubspot_owner_id"] == HS_OWNERS[by_email["assignment"]["owner"]]
    assert crm.contacts["503"]["hubspot_owner_id"] == HS_OWNERS[by_id["assignment"]["owner"]]
    (search,) = crm.api.calls("POST", "/crm/v3/objects/contacts/search")
    assert search.json()["filterGroups"][0]["filters"][0]["value"] == "lead1@acme-corp.example"
    due = {dt.datetime.fromisoformat(d["sla"]["due_at"]) for d in (by_email, by_id)}
    assert {dt.datetime.fromisoformat(t["properties"]["hs_timestamp"]) for t in crm.tasks} == due


def test_hubspot_outage_delays_nothing_and_loses_nothing(redis_url: str, tmp_path: Path) -> None:
    crm = _hubspot()  # not started: connection refused
    plugin = HubSpotOwnerPlugin(TOKEN, HS_OWNERS, base_url=crm.api.url, timeout=0.5)
    server = _server(redis_url, write_rules(tmp_path / "rules"), plugin, "hubspot-owner")
    try:
        with server.client() as client:
            before = _counts(client, "hubspot-owner")
            decisions = [client.post("/v1/leads", json=lead(
                email=f"lead{i}@acme-corp.example")).json() for i in range(5)]
            # routed while the CRM is down: every lead has its owner
            assert all(d["assignment"]["owner"] in REPS for d in decisions)
            deadline = time.monotonic() + 10
            while _delta(_counts(client, "hubspot-owner"), before)["retried"] < 5 and \
                    time.monotonic() < deadline:
                time.sleep(0.05)  # the attempts fail: the events stay in the outbox
            assert _delta(_counts(client, "hubspot-owner"), before)["retried"] >= 5
            crm.api.start()  # back on the same port, a 503 first
            crm.api.fail_next(1, 503)
            crm.api.wait_for(lambda _: len(crm.api.calls("PATCH", "/crm/", 200)) >= 5)
            deadline = time.monotonic() + 5
            while _delta(_counts(client, "hubspot-owner"), before)["delivered"] < 5 and \
                    time.monotonic() < deadline:
                time.sleep(0.05)  # acked right after the CRM answered
            counted = _delta(_counts(client, "hubspot-owner"), before)
    finally:
        server.stop()
        crm.api.stop()
    for i, d in enumerate(decisions):
        assert crm.contacts[str(500 + i)]["hubspot_owner_id"] == \
            HS_OWNERS[d["assignment"]["owner"]]
    assert counted["delivered"] == 5 and counted["dead"] == 0
    assert counted["retried"] >= 6  # 5+ while down, the 503 once back


def test_unknown_rep_is_dead_lettered(redis_url: str, tmp_path: Path,
                                      redis_client: redis.Redis) -> None:
    crm = _hubspot()
    with crm.api:
        plugin = HubSpotOwnerPlugin(TOKEN, {"r9": "100"}, base_url=crm.api.url)
        # 25 attempts would take minutes with a real backoff: a refusal takes none of them
        server = _server(redis_url, write_rules(tmp_path / "rules"), plugin, "hubspot-owner",
                         max_attempts=25)
        try:
            with server.client() as client:
                before = _counts(client, "hubspot-owner")
                d = client.post("/v1/leads", json=lead(email="lead1@acme-corp.example")).json()
                deadline = time.monotonic() + 15
                while not redis_client.xlen("lr:{lr}:outbox:dead") and time.monotonic() < deadline:
                    time.sleep(0.02)
                counted = _delta(_counts(client, "hubspot-owner"), before)
        finally:
            server.stop()
    ((_, dead),) = redis_client.xrange("lr:{lr}:outbox:dead")
    assert dead[b"sink"] == b"sink:hubspot-owner" and dead[b"lead_id"] == d["lead_id"].encode()
    rep = d["assignment"]["owner"]
    assert f"rep '{rep}' has no hubspot owner id".encode() in dead[b"error"]
    assert (dead[b"attempts"], dead[b"permanent"]) == (b"1", b"1")  # dead-lettered at once
    assert crm.api.requests == []  # the CRM was never asked
    assert counted == {"delivered": 0, "retried": 0, "dead": 1}


def test_salesforce_through_its_entry_point(redis_url: str, tmp_path: Path) -> None:
    """A real `leadrouter serve` loads salesforce-owner by its entry point, configured by
    environment; its token is revoked midway: renewed, nothing lost."""
    crm = Salesforce("3MVG9-e2e", "s3cr3t", users=set(SF_USERS.values()),
                     leads={LEAD_A: {}, "00Q5e00000XyZzYAAA": {}})
    env = {"LEADROUTER_SALESFORCE_LOGIN_URL": crm.api.url,
           "LEADROUTER_SALESFORCE_CLIENT_ID": "3MVG9-e2e",
           "LEADROUTER_SALESFORCE_CLIENT_SECRET": "s3cr3t",
           "LEADROUTER_SALESFORCE_OWNERS": ",".join(f"{r}={u}" for r, u in SF_USERS.items()),
           "LEADROUTER_SALESFORCE_TASKS": "true", "LEADROUTER_PLUGINS_BLOCK": "hubspot-owner",
           "LEADROUTER_OUTBOX_POLL_SECONDS": "0.02", "LEADROUTER_OUTBOX_RETRY_SECONDS": "0.05",
           "LEADROUTER_OUTBOX_RETRY_MAX_SECONDS": "0.2", "LEADROUTER_RELOAD_POLL_SECONDS": "0"}
    with crm.api:
        service = ServiceProcess(rules_dir=write_rules(tmp_path / "rules"),
                                 log_path=tmp_path / "serve.log", redis_url=redis_url,
                                 env=env).start()
        try:
            first = httpx.post(f"{service.url}/v1/leads", timeout=10,
                               json=lead(external_id=f"salesforce:{LEAD_A}")).json()
            crm.api.wait_for(lambda _: len(crm.tasks) == 1)
            crm.revoke_tokens()
            second = httpx.post(f"{service.url}/v1/leads", timeout=10,
                                json=lead(external_id="00Q5e00000XyZzYAAA")).json()
            crm.api.wait_for(lambda _: len(crm.tasks) == 2)
        finally:
            service.stop()
    assert crm.leads[LEAD_A]["OwnerId"] == SF_USERS[first["assignment"]["owner"]]
    assert crm.leads["00Q5e00000XyZzYAAA"]["OwnerId"] == SF_USERS[second["assignment"]["owner"]]
    assert crm.issued == 2  # one token, renewed once after the 401
    assert len(crm.api.calls("PATCH", "/services/data/v60.0/sobjects/Lead/", 401)) == 1
    due = dt.datetime.fromisoformat(first["sla"]["due_at"])
    assert crm.tasks[0]["ReminderDateTime"] == \
        due.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_a_second_worker_after_a_restart_writes_the_owner(redis_url: str,
                                                          tmp_path: Path) -> None:
    """The worker that routed the lead (and saw its on_decision) never reaches HubSpot and
    goes away; a `leadrouter serve` started afterwards, in its own process, with a fresh
    plugin (its entry point), finds the contact from the outbox event alone."""
    crm = _hubspot()  # down while the first worker runs
    rules = write_rules(tmp_path / "rules")
    first = HubSpotOwnerPlugin(TOKEN, HS_OWNERS, base_url=crm.api.url, timeout=0.5)
    server = _server(redis_url, rules, first, "hubspot-owner")
    try:
        with server.client() as client:
            by_email = client.post("/v1/leads", json=lead(
                email="lead2@acme-corp.example")).json()
            by_id = client.post("/v1/leads", json=lead(
                email="someone@elsewhere.example", external_id="hubspot:62515:506")).json()
            before = _counts(client, "hubspot-owner")
            deadline = time.monotonic() + 10
            while _delta(_counts(client, "hubspot-owner"), before)["retried"] < 2 and \
                    time.monotonic() < deadline:
                time.sleep(0.05)
            assert _delta(_counts(client, "hubspot-owner"), before)["retried"] >= 2
    finally:
        server.stop()
    env = {"LEADROUTER_HUBSPOT_TOKEN": TOKEN, "LEADROUTER_HUBSPOT_BASE_URL": crm.api.url,
           "LEADROUTER_HUBSPOT_OWNERS": ",".join(f"{r}={o}" for r, o in HS_OWNERS.items()),
           "LEADROUTER_PLUGINS_BLOCK": "salesforce-owner",
           # a pending event is retried once idle for the event budget (+20 %): keep it short
           "LEADROUTER_PLUGIN_EVENT_BUDGET": "1",
           "LEADROUTER_OUTBOX_POLL_SECONDS": "0.02", "LEADROUTER_OUTBOX_RETRY_SECONDS": "0.05",
           "LEADROUTER_OUTBOX_RETRY_MAX_SECONDS": "0.2", "LEADROUTER_RELOAD_POLL_SECONDS": "0"}
    with crm.api:
        service = ServiceProcess(rules_dir=rules, log_path=tmp_path / "serve.log",
                                 redis_url=redis_url, env=env).start()
        try:
            crm.api.wait_for(lambda _: len(crm.api.calls("PATCH", "/crm/", 200)) >= 2)
        finally:
            service.stop()
    assert crm.contacts["502"]["hubspot_owner_id"] == HS_OWNERS[by_email["assignment"]["owner"]]
    assert crm.contacts["506"]["hubspot_owner_id"] == HS_OWNERS[by_id["assignment"]["owner"]]
    (search,) = crm.api.calls("POST", "/crm/v3/objects/contacts/search")
    assert search.json()["filterGroups"][0]["filters"][0]["value"] == "lead2@acme-corp.example"
    assert crm.api.calls("PATCH", "/crm/v3/objects/contacts/506")  # by the id, no search
