"""The email plugin against a real SMTP server on loopback (tests/_smtp.py: aiosmtpd, STARTTLS
and implicit TLS with a self-signed certificate made in the test, AUTH): the MIME message read
back (multipart/alternative, headers, the signed links, the due time in the rep's own zone),
a refused login dead-lettered, a refused connection retried, no PII in the logs."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest
from _smtp import Smtp, self_signed
from leadrouter_email import EmailPlugin, PermanentError, RetryableError
from leadrouter_sdk import PermanentDeliveryError, PluginDisabled

DUE = dt.datetime(2024, 5, 1, 13, 0, tzinfo=dt.UTC)  # 06:00 in Los Angeles (PDT)
LINKS = {a: f"https://lr.example/v1/links/{a}?t=tok{a}" for a in ("accept", "contacted", "reject")}
DECISION = {"lead": {"first_name": "Ann", "last_name": "Lee", "email": "ann@acme-corp.example",
                     "company": "Acme & Co", "title": "CTO", "country": "US"},
            "score": {"total": 87, "grade": "A"},
            "explanation": [{"stage": "territory", "outcome": "na", "detail": "country US"},
                            {"stage": "assignment", "outcome": "alice",
                             "detail": "round robin in na-enterprise"}]}
USER = ("leadrouter", "app-password")


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


def _event(make_event: Any, type: str = "lead.assigned", **data: Any) -> Any:
    data.setdefault("owner", "alice")
    data.setdefault("pool", "na-enterprise")
    data.setdefault("owner_timezone", "America/Los_Angeles")
    return make_event(type, lead_id=data.pop("lead_id", "ld_1"), id=data.pop("id", "1-0"),
                      due_at=DUE, decision=DECISION, **data)


def _plugin(smtp: Smtp, **kw: Any) -> EmailPlugin:
    kw.setdefault("reps", {"alice": "alice@sales.example", "bob": "bob@sales.example"})
    kw.setdefault("security", smtp.security)
    return EmailPlugin("localhost", port=smtp.port, sender="Leadrouter <lr@sales.example>",
                       timeout=3, **kw)


def _parts(message: Any) -> tuple[str, str]:
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return plain, html


def test_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SMTP_HOST", "SMTP_PORT", "FROM", "REPS", "POOLS", "SECURITY", "USERNAME"):
        monkeypatch.delenv(f"LEADROUTER_EMAIL_{var}", raising=False)
    with pytest.raises(PluginDisabled, match="LEADROUTER_EMAIL_SMTP_HOST"):
        EmailPlugin()
    monkeypatch.setenv("LEADROUTER_EMAIL_SMTP_HOST", "smtp.example")
    monkeypatch.setenv("LEADROUTER_EMAIL_FROM", "lr@sales.example")
    with pytest.raises(PluginDisabled, match="LEADROUTER_EMAIL_REPS"):
        EmailPlugin()
    monkeypatch.setenv("LEADROUTER_EMAIL_REPS", "alice=alice@sales.example")
    monkeypatch.setenv("LEADROUTER_EMAIL_SECURITY", "tls")
    plugin = EmailPlugin()
    assert (plugin.port, plugin.security, plugin.reps) == (
        465, "tls", {"alice": "alice@sales.example"})
    monkeypatch.setenv("LEADROUTER_EMAIL_SECURITY", "ssl3")
    with pytest.raises(ValueError, match="starttls, tls or none"):
        EmailPlugin()


def test_starttls_with_auth_sends_both_parts(cert: tuple[Path, Path], leadrouter: Any,
                                             make_event: Any) -> None:
    with Smtp(security="starttls", cert=cert, user=USER) as smtp:
        plugin = _plugin(smtp, username=USER[0], password=USER[1], ca_file=str(cert[0]))
        leadrouter(plugin).deliver(_event(make_event, links={
            **LINKS, "expires_at": "2024-05-02T13:00:00Z"}))
        (message,) = smtp.wait_for(1)
    assert smtp.logins and smtp.logins[-1][1] is True
    assert smtp.envelopes == [("lr@sales.example", ["alice@sales.example"])]
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["To"] == "alice@sales.example"
    assert message["Subject"] == "New lead for you: Ann Lee (due Wed 1 May 2024, 06:00 PDT)"
    assert message["Message-ID"] == "<1-0.ld_1@sales.example>"
    assert message["X-Leadrouter-Lead"] == "ld_1"
    plain, html = _parts(message)
    assert "Due: Wed 1 May 2024, 06:00 PDT (America/Los_Angeles)" in plain
    assert "06:00 PDT (America/Los_Angeles)" in html
    assert "Company: Acme & Co" in plain and "Acme &amp; Co" in html
    assert "round robin in na-enterprise" in plain and "round robin in na-enterprise" in html
    for action, url in LINKS.items():
        assert url in plain
        assert f'href="{url}"' in html, action
    assert "Accept: https://lr.example/v1/links/accept?t=tokaccept" in plain
    assert "These links work once, until Thu 2 May 2024, 06:00 PDT" in plain


def test_implicit_tls_and_the_rep_zone(cert: tuple[Path, Path], make_event: Any) -> None:
    with Smtp(security="tls", cert=cert) as smtp:
        plugin = _plugin(smtp, ca_file=str(cert[0]))
        asyncio.run(plugin.on_event(event=_event(make_event, owner="bob",
                                                 owner_timezone="Europe/Berlin")))
        asyncio.run(plugin.on_event(event=_event(make_event, "sla.warning", id="2-0",
                                                 owner="bob", owner_timezone="Asia/Tokyo",
                                                 minutes_left=15)))
        first, second = smtp.wait_for(2)
    plain, html = _parts(first)
    assert "Due: Wed 1 May 2024, 15:00 CEST (Europe/Berlin)" in plain
    assert "Accept:" not in plain and "href=" not in html  # no links configured: no buttons
    assert second["Subject"] == "Lead due soon: Ann Lee (due Wed 1 May 2024, 22:00 JST)"
    assert "15 minutes left" in _parts(second)[0]


def test_refused_login_is_permanent_and_logs_no_pii(
        cert: tuple[Path, Path], make_event: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "leadrouter.plugins.email")
    with Smtp(security="starttls", cert=cert, user=USER) as smtp:
        plugin = _plugin(smtp, username=USER[0], password="wrong", ca_file=str(cert[0]))
        with pytest.raises(PermanentError, match="LEADROUTER_EMAIL_PASSWORD") as info:
            asyncio.run(plugin.on_event(event=_event(make_event, links=LINKS)))
        assert smtp.messages == [] and smtp.logins[-1][1] is False
    assert isinstance(info.value, PermanentDeliveryError)
    assert "lead ld_1 (rep alice)" in caplog.text
    for pii in ("@", "Ann", "Lee", "Acme", "tokaccept"):
        assert pii not in caplog.text


def test_refused_connection_and_untrusted_certificate_are_retried(
        cert: tuple[Path, Path], make_event: Any) -> None:
    smtp = Smtp(security="starttls", cert=cert)
    plugin = _plugin(smtp, ca_file=str(cert[0]))
    with pytest.raises(RetryableError, match="ConnectionRefusedError"):
        asyncio.run(plugin.on_event(event=_event(make_event)))
    with smtp:
        with pytest.raises(RetryableError, match="SSLCertVerificationError"):
            asyncio.run(_plugin(smtp).on_event(event=_event(make_event)))  # system CAs only
        asyncio.run(plugin.on_event(event=_event(make_event)))  # the same event, later
        assert len(smtp.wait_for(1)) == 1


def test_one_connection_is_reused_and_reopened(cert: tuple[Path, Path], make_event: Any) -> None:
    smtp = Smtp(security="starttls", cert=cert, user=USER)
    plugin = _plugin(smtp, username=USER[0], password=USER[1], ca_file=str(cert[0]))
    with smtp:
        for i in range(3):
            asyncio.run(plugin.on_event(event=_event(make_event, id=f"{i}-0")))
        smtp.wait_for(3)
        assert len(smtp.logins) == 1  # one conversation: TLS and AUTH once
    with smtp:  # the server went away and came back: the idle connection is dead
        asyncio.run(plugin.on_event(event=_event(make_event, id="9-0")))
        assert len(smtp.wait_for(4)) == 4 and len(smtp.logins) == 2


def test_unknown_rep_uses_the_pool_address_or_is_permanent(make_event: Any) -> None:
    with Smtp() as smtp:
        plugin = _plugin(smtp, pools={"na-enterprise": "na-team@sales.example"})
        asyncio.run(plugin.on_event(event=_event(make_event, owner="carol")))
        (message,) = smtp.wait_for(1)
        assert message["To"] == "na-team@sales.example"
        with pytest.raises(PermanentError, match="add `carol=<address>` to LEADROUTER_EMAIL_REPS"):
            asyncio.run(plugin.on_event(event=_event(make_event, owner="carol", pool="emea")))
