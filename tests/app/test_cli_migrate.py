"""``leadrouter migrate-keys`` (router/app/cli_migrate.py) on real data: a service writes
leads, reps, pools, the SLA schedule, the outbox and idempotency keys; every key is renamed to
the layout before one hash tag per deployment (``lr:{lead:ID}`` ...), as an older version left
it; the dry run lists the renames and changes nothing; the run renames everything keeping the
TTLs; a second run finds nothing; and the service, started again, reads what it wrote."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import redis
from _service import AUTH, ServiceProcess, lead, leadrouter_command, write_rules

from router.state.keys import Keys, legacy_to_current

# The old names, by the current ones (the layout router/state/keys.py replaced).
_OLD = [(re.compile(rx), repl) for rx, repl in [
    (r"^(outbox|sla|leads|apikeys|erasures|rules|shadow|lx|accounts)(:.*)?$", r"{\1}\2"),
    (r"^eng:alias:(.*)$", r"{eng:alias:\1}"),
    (r"^(eng:.*?)(:seen)?$", r"{\1}\2"),
    (r"^(rep:[^:]*)(:day:.*|:open)?$", r"{\1}\2"),
    (r"^(pool:[^:]*)(:day:.*)?$", r"{\1}\2"),
    (r"^(lead:[^:]*)(:history)?$", r"{\1}\2"),
    (r"^((?:queue|account|idem|rl|wh|person):.*)$", r"{\1}"),
]]
# Kinds of keys born after that layout (no older version wrote them): left as they are.
_NEWER = ("audit", "funnel:")


def to_old(keys: Keys, name: str) -> str:
    rest = name.removeprefix(keys.base)
    for rx, repl in _OLD:
        if rx.match(rest):
            return keys.prefix + rx.sub(repl, rest)
    raise AssertionError(f"no old name for {name}")


def _migrate(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*leadrouter_command(), "migrate-keys", "--redis-url", url, *extra],
                          capture_output=True, text=True, timeout=60, check=False)


def _snapshot(client: httpx.Client, ids: list[str]) -> dict[str, Any]:
    leads = {}
    for lead_id in ids:
        body = client.get(f"/v1/leads/{lead_id}").json()
        leads[lead_id] = {k: body.get(k) for k in ("status", "owner", "pool", "state",
                                                   "score", "sla")}
    return {"leads": leads, "pool": client.get("/v1/pools/rr").json(),
            "rep": client.get("/v1/reps/r2", headers=AUTH).json()}


def test_migrate_keys_renames_old_data_that_the_service_then_reads(
        tmp_path: Path, redis_url: str, redis_client: redis.Redis) -> None:
    rules = write_rules(tmp_path / "rules")
    keys = Keys()
    redis_client.xgroup_create(keys.outbox, "sink:test", id="$", mkstream=True)
    service = ServiceProcess(rules_dir=rules, log_path=tmp_path / "one.log", redis_url=redis_url)
    try:
        service.start()
        with httpx.Client(base_url=service.url, timeout=10) as client:
            assert client.put("/v1/reps/r2", json={"status": "away"},
                              headers=AUTH).status_code == 200
            ids = []
            for i in range(6):
                r = client.post("/v1/leads", json=lead(email=f"m{i}@acme-corp.example"),
                                headers={"Idempotency-Key": f"mig-{i}"})
                assert r.status_code == 201, r.text
                ids.append(r.json()["lead_id"])
            before = _snapshot(client, ids)
    finally:
        service.stop()
    every = sorted(k.decode() for k in redis_client.scan_iter(count=1000))
    newer = [k for k in every if k.removeprefix(keys.base).startswith(_NEWER)]
    assert keys.audit in newer  # the rep change above was audited
    current = [k for k in every if k not in newer]
    assert {keys.sla_due, keys.sla_facts, keys.outbox, keys.rep("r2"), keys.pool("rr"),
            keys.lead(ids[0]), keys.history(ids[0]), keys.arrivals,
            keys.idempotency("key:api", "mig-0")} <= set(current)
    ttl = {name: int(redis_client.pttl(name)) for name in current}  # type: ignore[arg-type]
    old = {name: to_old(keys, name) for name in current}
    for name, old_name in old.items():  # as an older version left them
        assert legacy_to_current(keys, old_name) == name
        redis_client.rename(name, old_name)

    dry = _migrate(redis_url, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert sorted(dry.stdout.splitlines()) == sorted(f"{o} -> {n}" for n, o in old.items())
    assert "would rename" in dry.stderr
    assert sorted(k.decode() for k in redis_client.scan_iter(count=1000)) == sorted(
        [*old.values(), *newer])

    run = _migrate(redis_url, "--batch", "3")
    assert run.returncode == 0, run.stderr
    assert f"renamed {len(current)} keys" in run.stderr and "0 conflicts" in run.stderr
    assert run.stderr.count("scanned") > 2  # progress, a line per SCAN step
    assert sorted(k.decode() for k in redis_client.scan_iter(count=1000)) == every
    for name in current:  # the TTLs came along (a moment older)
        now = int(redis_client.pttl(name))  # type: ignore[arg-type]
        assert now == -1 if ttl[name] == -1 else ttl[name] - 60_000 < now <= ttl[name], name

    assert [g["name"] for g in redis_client.xinfo_groups(keys.outbox)] == [b"sink:test"]
    again = _migrate(redis_url)
    assert again.returncode == 0 and "renamed 0 keys" in again.stderr, again.stderr

    service = ServiceProcess(rules_dir=rules, log_path=tmp_path / "two.log", redis_url=redis_url)
    try:
        service.start()
        with httpx.Client(base_url=service.url, timeout=10) as client:
            assert _snapshot(client, ids) == before  # leads, pool, rep state, SLA as they were
            retry = client.post("/v1/leads", json=lead(email="m0@acme-corp.example"),
                                headers={"Idempotency-Key": "mig-0"})
            assert (retry.status_code, retry.json()["lead_id"]) == (200, ids[0])
            outbox = redis_client.xlen(keys.outbox)
            fresh = client.post("/v1/leads", json=lead(email="new@acme-corp.example"))
            assert fresh.status_code == 201
            assert redis_client.xlen(keys.outbox) > outbox
            assert redis_client.zscore(keys.sla_due, fresh.json()["lead_id"]) is not None
    finally:
        service.stop()


def test_a_key_the_new_layout_already_has_is_a_conflict_left_alone(
        redis_url: str, redis_client: redis.Redis) -> None:
    redis_client.hset("lr:{rep:a}", mapping={"status": "away"})
    redis_client.hset("lr:{lr}:rep:a", mapping={"status": "available"})
    redis_client.set("lr:{lead:x}", "1", px=600_000)
    run = _migrate(redis_url)
    assert run.returncode == 1
    assert "lr:{rep:a}" in run.stderr and "stop every service" in run.stderr
    assert redis_client.hget("lr:{lr}:rep:a", "status") == b"available"  # not overwritten
    assert redis_client.exists("lr:{rep:a}", "lr:{lr}:lead:x") == 2
    assert 0 < int(redis_client.pttl("lr:{lr}:lead:x")) <= 600_000  # type: ignore[arg-type]
