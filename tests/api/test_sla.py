"""The handoff SLA end to end: the real service over HTTP on real Valkey, with short real SLAs
(1-2 s) and the breach worker running in the service. In-process servers (a background thread,
so a test can inject a clock) and real ``leadrouter serve`` processes (two at once; killed and
restarted mid-SLA). Unit-level cases on a controllable clock: tests/services/test_sla.py."""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis
from _rules import SLA_SCORING, sla_reps

from router.app.application import create_app
from router.settings import Settings

NY = ZoneInfo("America/New_York")

RULES = {
    "scoring.yaml": SLA_SCORING,
    "reps.yaml": sla_reps("r1", "r2", "r3"),
    "routing.yaml": """\
territories:
  - {id: any, when: "true"}
segments:
  - {id: any, when: "true"}
pools:
  rr: {strategy: round_robin, members: [r1, r2, r3], working_hours: false}
  ny: {strategy: round_robin, members: [ny1, ny2], working_hours: false}
assignment:
  - {id: to-ny, when: 'campaign == "ny"', pool: ny}
  - {id: to-rr, when: "true", pool: rr}
""",
    "sla.yaml": """\
sla:
  - {id: ny-business, when: 'campaign == "ny"', accept_within: 2h, clock: business,
     on_breach: reassign}
  - {id: slow, when: 'campaign == "slow"', accept_within: 2s, on_breach: reassign}
  - {id: fast, when: "true", accept_within: 1s, on_breach: reassign, max_reassignments: 1,
     final: {queue: managers}}
""",
}


# -- harness -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sla-e2e") / "rules"
    directory.mkdir()
    for name, text in RULES.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


class Clock:
    """Real time plus a movable offset (the app reads it; the worker too)."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.offset = (start - dt.datetime.now(dt.UTC)) if start else dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    def set(self, when: dt.datetime) -> None:
        self.offset = when - dt.datetime.now(dt.UTC)


@pytest.fixture
def serve(redis_url: str, rules_dir: Path) -> Iterator[Callable[..., httpx.Client]]:
    """``serve(clock=None)``: the app on a real uvicorn server in a thread; an HTTP client."""
    import uvicorn

    servers: list[tuple[uvicorn.Server, threading.Thread, httpx.Client]] = []

    def start(clock: Callable[[], dt.datetime] | None = None) -> httpx.Client:
        settings = Settings(redis_url=redis_url, rules_dir=str(rules_dir),
                            require_rules_tests=False, reload_poll_seconds=0, access_log=False,
                            sla_poll_seconds=0.2)
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(settings, clock=clock),
                                               host="127.0.0.1", port=port, lifespan="on",
                                               log_level="warning", loop="asyncio"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        servers.append((server, thread, client))
        return client

    yield start
    for server, _thread, client in servers:
        client.close()
        server.should_exit = True
    for _, thread, _ in servers:
        thread.join(timeout=10)


class Process:
    """``leadrouter serve`` in its own process group, log in a file."""

    def __init__(self, rules_dir: Path, redis_url: str, log: Path, **env: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        script = Path(sys.executable).with_name("leadrouter")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "router.app.cli"]
        self.args = [*command, "serve", "--port", str(self.port), "--rules", str(rules_dir),
                     "--redis-url", redis_url]
        base = {k: v for k, v in os.environ.items() if not k.startswith("LEADROUTER_")}
        self.env = {**base, "LEADROUTER_REQUIRE_RULES_TESTS": "false",
                    "LEADROUTER_LOG_LEVEL": "info", "LEADROUTER_ACCESS_LOG": "false",
                    "LEADROUTER_RELOAD_POLL_SECONDS": "0", **env}
        self.proc: subprocess.Popen[bytes] | None = None

    def launch(self) -> Process:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 30) -> Process:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text(errors="replace")[-2000:]
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            time.sleep(0.05)
        raise TimeoutError(self.log.read_text(errors="replace")[-2000:])

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for p in started:
        p.stop()
    for p in started:
        p.kill()


def lead(**fields: Any) -> dict[str, Any]:
    return {"email": "jane@acme.example", "country": "US", "employees": 50, **fields}


def post_lead(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = client.post("/v1/leads", json=lead(**fields))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_for(check: Callable[[], Any], timeout: float = 6.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(interval)


def stream(client: redis.Redis, key: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """XRANGE of ``key`` with the types redis-py does not state."""
    return cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(key))


def events(decision: dict[str, Any]) -> list[str]:
    return [h["event"] for h in decision["history"]]


def parse(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


# -- owner actions over HTTP -------------------------------------------------------------------


def test_accept_in_time_stale_owner_and_reject_over_http(serve: Callable[..., httpx.Client],
                                                         redis_client: redis.Redis,
                                                         outbox_sink: str) -> None:
    api = serve()
    first = post_lead(api)
    assert first["assignment"]["owner"] == "r1" and first["sla"]["policy"] == "fast"
    accepted = api.post(f"/v1/leads/{first['lead_id']}/accept", json={"rep": "r1"})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["sla"]["state"] == "met"

    second = post_lead(api)  # r2
    conflict = problem(api.post(f"/v1/leads/{second['lead_id']}/accept", json={"rep": "r1"}),
                       409)
    assert conflict["owner"] == "r2" and "r2" in conflict["detail"]
    bad = problem(api.post(f"/v1/leads/{second['lead_id']}/reject",
                           json={"rep": "r2", "reason": "too_pricey"}), 422)
    assert "no_budget" in bad["detail"] and "wrong_territory" in bad["allowed"]
    problem(api.post(f"/v1/leads/{second['lead_id']}/reject", json={"rep": "r2"}), 422)
    problem(api.post(f"/v1/leads/{second['lead_id']}/accept", json={}), 422)
    problem(api.post("/v1/leads/ld_nope/accept", json={"rep": "r1"}), 404)
    rejected = api.post(f"/v1/leads/{second['lead_id']}/reject",
                        json={"rep": "r2", "reason": "no_budget", "note": "call in Q3"})
    assert rejected.status_code == 200, rejected.text
    body = rejected.json()
    assert body["status"] == "nurture" and body["assignment"]["queue"] == "marketing-nurture"
    assert body["history"][-1]["event"] == "recycled"

    time.sleep(1.5)  # both deadlines have passed: neither lead is escalated
    for d in (first, second):
        again = api.get(f"/v1/leads/{d['lead_id']}").json()
        assert "breached" not in events(again)
    assert api.get(f"/v1/leads/{first['lead_id']}").json()["assignment"]["owner"] == "r1"
    report = api.get("/v1/sla/report").json()
    fast = report["by_policy"]["fast"]
    assert (fast["handed_off"], fast["accepted_in_time"], fast["breached"]) == (2, 1, 0)
    assert fast["recycled_by_reason"] == {"no_budget": 1}
    assert report["by_pool"]["rr"]["handed_off"] == 2
    types = [f[b"type"] for _, f in stream(redis_client, "lr:{lr}:outbox")]
    assert types.count(b"lead.accepted") == 1 and types.count(b"lead.recycled") == 1


def test_breach_reassigns_then_chain_ends_in_final_queue(serve: Callable[..., httpx.Client],
                                                         redis_client: redis.Redis,
                                                         outbox_sink: str) -> None:
    api = serve()
    d = post_lead(api)
    due = parse(d["sla"]["due_at"])

    def reassigned() -> Any:
        got = api.get(f"/v1/leads/{d['lead_id']}").json()
        return got if "reassigned" in events(got) else None

    after = wait_for(reassigned)
    breach = next(h for h in after["history"] if h["event"] == "breached")
    assert dt.timedelta(0) <= parse(breach["at"]) - due < dt.timedelta(seconds=2)
    assert breach["detail"]["owner"] == "r1"
    assert after["assignment"]["owner"] == "r2" and after["assignment"]["pool"] == "rr"
    assert after["sla"]["state"] == "pending" and parse(after["sla"]["due_at"]) > due
    report = api.get("/v1/sla/report", params={"since": "1h"}).json()
    assert report["by_policy"]["fast"]["breached"] >= 1
    assert report["by_pool"]["rr"]["reassigned"] == 1

    def final() -> Any:
        got = api.get(f"/v1/leads/{d['lead_id']}").json()
        return got if got["assignment"]["queue"] == "managers" else None

    done = wait_for(final)  # max_reassignments 1: the second breach is final
    assert events(done)[-4:] == ["breached", "reassigned", "breached", "requeued"]
    assert done["assignment"]["owner"] is None and done["sla"]["state"] == "breached"
    time.sleep(1.2)
    assert events(api.get(f"/v1/leads/{d['lead_id']}").json()) == events(done)
    total = api.get("/v1/sla/report").json()["total"]
    assert (total["breached"], total["reassigned"]) == (2, 1)
    assert total["breach_actions"] == {"reassign": 1, "final:queue:managers": 1}
    types = [f[b"type"] for _, f in stream(redis_client, "lr:{lr}:outbox")]
    assert types == [b"lead.assigned", b"lead.breached", b"lead.reassigned", b"lead.breached",
                     b"lead.requeued"]


def test_business_hours_in_the_service(serve: Callable[..., httpx.Client]) -> None:
    # Friday 18:30 in New York: due at 11:00 on Monday (two business hours; DST starts Sunday).
    clock = Clock(dt.datetime(2026, 3, 6, 18, 30, tzinfo=NY))
    api = serve(clock)
    d = post_lead(api, campaign="ny")
    due = parse(d["sla"]["due_at"])
    assert due.astimezone(NY) == dt.datetime(2026, 3, 9, 11, 0, tzinfo=NY)
    clock.set(due - dt.timedelta(seconds=5))
    time.sleep(0.6)
    assert api.get(f"/v1/leads/{d['lead_id']}").json()["assignment"]["owner"] == "ny1"
    clock.set(due)
    after = wait_for(lambda: (got := api.get(f"/v1/leads/{d['lead_id']}").json())
                     ["assignment"]["owner"] == "ny2" and got, timeout=4)
    # two business hours from the breach (acted on within 2 s of 11:00)
    new_due = parse(after["sla"]["due_at"]) - dt.datetime(2026, 3, 9, 13, 0, tzinfo=NY)
    assert dt.timedelta(0) <= new_due < dt.timedelta(seconds=2)
    report = api.get("/v1/sla/report", params={"since": "2026-03-06", "until": "2026-03-10"})
    assert report.json()["by_policy"]["ny-business"]["reassigned"] == 1
    problem(api.get("/v1/sla/report", params={"since": "yesterday"}), 422)


# -- several processes, restarts ---------------------------------------------------------------


def test_two_processes_escalate_each_due_lead_exactly_once(
        rules_dir: Path, redis_url: str, redis_client: redis.Redis, tmp_path: Path,
        processes: list[Process]) -> None:
    for name in ("a", "b"):
        processes.append(Process(rules_dir, redis_url, tmp_path / f"{name}.log",
                                 LEADROUTER_SLA_BATCH="4").launch())
    for p in processes:
        p.wait_ready()
    n = 40
    with httpx.Client(base_url=processes[0].url, timeout=10) as api:
        response = api.post("/v1/leads:batch", json={"leads": [lead() for _ in range(n)]})
        assert response.json()["created"] == n, response.text
        ids = [r["decision"]["lead_id"] for r in response.json()["results"]]

        # each lead: breach → reassign, breach → final queue (2 breaches, 1 reassignment)
        def finished() -> bool:
            return bool(api.get("/v1/sla/report").json()["total"]["breached"] >= 2 * n)

        wait_for(finished, timeout=12, interval=0.2)
        time.sleep(1.0)  # nothing more may happen
        total = api.get("/v1/sla/report").json()["total"]
    assert (total["breached"], total["reassigned"]) == (2 * n, n)
    facts = [f for _, f in stream(redis_client, "lr:{lr}:sla:facts")]
    breaches = collections.Counter(f[b"lead"].decode() for f in facts if f[b"t"] == b"breach")
    assert breaches == {i: 2 for i in ids}
    with httpx.Client(base_url=processes[1].url, timeout=10) as api:
        for i in ids[:5]:
            history = events(api.get(f"/v1/leads/{i}").json())
            assert history.count("breached") == 2 and history.count("reassigned") == 1
    worked = [p.log.read_text(errors="replace").count("breached (owner") for p in processes]
    assert sum(worked) == 2 * n, worked


def test_restart_mid_sla_still_escalates(rules_dir: Path, redis_url: str, tmp_path: Path,
                                         processes: list[Process]) -> None:
    first = Process(rules_dir, redis_url, tmp_path / "first.log").launch().wait_ready()
    processes.append(first)
    with httpx.Client(base_url=first.url, timeout=10) as api:
        d = post_lead(api, campaign="slow")  # due in 2 s
    first.kill()  # dies before the deadline (SIGKILL: no clean shutdown)
    second = Process(rules_dir, redis_url, tmp_path / "second.log").launch()
    processes.append(second)
    second.wait_ready()
    due = parse(d["sla"]["due_at"])
    # The deadline passed while no service ran (start-up takes longer than the 2 s SLA).
    time.sleep(max(0.0, (due - dt.datetime.now(dt.UTC)).total_seconds()))
    with httpx.Client(base_url=second.url, timeout=10) as api:
        after = wait_for(lambda: (got := api.get(f"/v1/leads/{d['lead_id']}").json())
                         ["assignment"]["owner"] != d["assignment"]["owner"] and got, timeout=4)
    assert events(after)[-2:] == ["breached", "reassigned"]
