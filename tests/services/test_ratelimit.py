"""Rate limits: atomic in Redis across processes, 429 + Retry-After + RateLimit headers, the
client address from X-Forwarded-For only behind a trusted proxy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from _intake import SECRET_ENV, intake_rules, started
from _service import ADMIN_TOKEN, AUTH, Clock, ServiceProcess, ThreadServer, assert_problem

from router.app.application import create_app
from router.services.ratelimit import client_address
from router.settings import Settings


def post_form(url: str, n: int, **headers: str) -> httpx.Response:
    # a new connection per request, as separate browsers would open
    return httpx.post(f"{url}/v1/forms/contact", timeout=10, headers={
        "Origin": "https://www.example.com", **headers},
        data={"email": f"p{n}@limit.example", "lr_started": started()})


@pytest.mark.slow
def test_form_limit_holds_across_two_processes(tmp_path: Path, redis_url: str) -> None:
    # 10 an hour: one request's worth refills every 6 minutes, far longer than 24 posts take on
    # any machine, so the count does not depend on how fast this one is
    rules = intake_rules(tmp_path / "rules", form_rate="10/h")
    env = {**SECRET_ENV, "LEADROUTER_RELOAD_POLL_SECONDS": "0"}
    procs = [ServiceProcess(rules_dir=rules, log_path=tmp_path / f"p{i}.log",
                            redis_url=redis_url, env=env).launch() for i in range(2)]
    try:
        for p in procs:
            p.wait_ready(60)
        answers = [post_form(procs[i % 2].url, i) for i in range(24)]
    finally:
        for p in procs:
            p.stop()
    codes = [r.status_code for r in answers]
    assert codes.count(303) == 10, codes  # one budget for both processes
    assert codes.count(429) == 14, codes
    refused = next(r for r in answers if r.status_code == 429)
    problem = assert_problem(refused, 429)
    assert problem["type"].endswith("rate-limited")
    assert 1 <= int(refused.headers["retry-after"]) <= 360  # one request per 6 min refills
    assert refused.headers["ratelimit-limit"] == "10"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.headers["ratelimit-policy"] == "10;w=3600"
    assert refused.headers["access-control-allow-origin"] == "https://www.example.com"
    ok = answers[0]
    assert ok.headers["ratelimit-remaining"] == "9"


def test_refill_and_per_key_buckets(start_service: Callable[..., Any], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    # The limits judge by the app's clock when one is injected: time moves when the test
    # says, not with how fast this machine answers.
    clock = Clock()
    server = start_service(clock=clock, rules_dir=str(intake_rules(
        tmp_path / "rules", form_rate="2/min", crm_rate="3/min")))
    with server.client() as client:
        keys = [client.post("/v1/admin/keys", headers=AUTH,
                            json={"source": "crm", "scopes": ["intake"]}).json()["key"]
                for _ in range(2)]
        codes = [client.post("/v1/sources/crm", headers={"X-API-Key": keys[0]},
                             json={"contact": {"email": f"k{i}@limit.example"}}).status_code
                 for i in range(4)]
        assert codes == [201, 201, 201, 429]
        other = client.post("/v1/sources/crm", headers={"X-API-Key": keys[1]},
                            json={"contact": {"email": "k9@limit.example"}})
        assert other.status_code == 201  # each key has its own budget
    codes = [post_form(server.url, 100 + i).status_code for i in range(3)]
    assert codes == [303, 303, 429]
    refused = post_form(server.url, 103)
    assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 30
    clock.advance(seconds=30)  # 2 per minute: one request's worth refilled
    assert post_form(server.url, 200).status_code == 303
    assert post_form(server.url, 201).status_code == 429  # and only one


def _server(rules: Path, redis_url: str, **settings: Any) -> ThreadServer:
    # uvicorn itself must not rewrite the client address (leadrouter serve turns that off too)
    app = create_app(Settings(rules_dir=str(rules), redis_url=redis_url,
                              reload_poll_seconds=0, admin_token=ADMIN_TOKEN, **settings))
    server = ThreadServer(app)
    server.server.config.proxy_headers = False
    return server.start()


def test_forwarded_for_only_from_trusted_proxies(tmp_path: Path, redis_url: str) -> None:
    rules = intake_rules(tmp_path / "rules", form_rate="1/min")
    untrusted = _server(rules, redis_url)
    trusted = _server(rules, redis_url, trusted_proxies="127.0.0.1", key_prefix="lr2:")
    try:
        # not trusted: a client cannot pick its own bucket with the header
        first = post_form(untrusted.url, 1, **{"X-Forwarded-For": "203.0.113.1"})
        second = post_form(untrusted.url, 2, **{"X-Forwarded-For": "203.0.113.2"})
        assert (first.status_code, second.status_code) == (303, 429)
        codes = [post_form(trusted.url, 10 + i, **{"X-Forwarded-For": f"198.51.100.{i}"})
                 .status_code for i in range(3)]
        assert codes == [303, 303, 303]  # three clients behind the proxy, three budgets
        again = post_form(trusted.url, 20, **{"X-Forwarded-For": "198.51.100.0"})
        assert again.status_code == 429
    finally:
        untrusted.stop()
        trusted.stop()


def test_client_address_rules() -> None:
    h = {"x-forwarded-for": "1.1.1.1, 10.0.0.5, 10.0.0.9"}
    assert client_address("127.0.0.1", h, "") == "127.0.0.1"
    assert client_address("10.0.0.9", h, "10.0.0.0/8") == "1.1.1.1"
    assert client_address("10.0.0.9", {"x-forwarded-for": "junk, 2.2.2.2"},
                          "10.0.0.0/8") == "2.2.2.2"
    assert client_address("2001:db8::1", {}, "") == "2001:db8::/64"
    assert client_address("::ffff:192.0.2.1", {}, "") == "192.0.2.1"
    assert client_address(None, {}, "") == "unknown"


# -- the services the intake endpoints are given (router/services/ratelimit.py) -------------


@pytest.mark.anyio
async def test_rate_limits_count_per_bucket_in_redis(store: Any) -> None:
    from router.intake.config import parse_rate
    from router.intake.mapping import IntakeError
    from router.services.ratelimit import RateLimits

    limits = RateLimits(store)
    spec = parse_rate("2/min")
    first = await limits.enforce("key:a", spec)
    assert (first["RateLimit-Limit"], first["RateLimit-Remaining"]) == ("2", "1")
    await limits.enforce("key:a", spec)
    with pytest.raises(IntakeError) as refused:
        await limits.enforce("key:a", spec)
    assert refused.value.status == 429 and "Retry-After" in refused.value.headers
    assert (await limits.enforce("key:b", spec))["RateLimit-Remaining"] == "1"  # own bucket


@pytest.mark.anyio
async def test_webhook_replays_claim_finish_and_release(store: Any) -> None:
    from router.services.ratelimit import WebhookReplays

    replays = WebhookReplays(store)
    assert await replays.claim("hub", "msg-1", "fp", 60) is None  # this request owns it
    assert await replays.claim("hub", "msg-1", "fp", 60) == "F|fp"  # in flight
    await replays.finish("hub", "msg-1", "fp", "[]", 60)
    assert await replays.claim("hub", "msg-1", "fp", 60) == "D|fp|[]"  # its outcome
    assert await replays.claim("hub", "msg-2", "fp", 60) is None
    await replays.release("hub", "msg-2")  # failed: the retry gets through
    assert await replays.claim("hub", "msg-2", "fp", 60) is None


@pytest.mark.anyio
async def test_releasing_a_claim_while_redis_is_down_is_not_an_error(store: Any) -> None:
    from router.services.ratelimit import WebhookReplays

    replays = WebhookReplays(store)
    await store.close()
    await replays.release("hub", "msg-3")  # the claim expires by itself
