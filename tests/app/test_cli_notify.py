"""``leadrouter plugins test-notify``: a sample assignment through the installed Slack and email
plugins (configured by environment, found by entry point) to a local Slack Web API
(tests/_slack.py) and a real SMTP server (tests/_smtp.py); what was sent, or the error with
its fix and a non-zero exit."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from _slack import Slack
from _smtp import Smtp

from router.app.cli import main

TOKEN = "xoxb-cli-test"
RULES = str(Path(__file__).resolve().parents[2] / "rules")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("LEADROUTER_PLUGINS_BLOCK", "")
    for var in ("ACTION_SECRET", "PUBLIC_URL", "SLACK_CHANNELS", "SLACK_CHANNEL",
                "SLACK_SIGNING_SECRET", "EMAIL_POOLS", "EMAIL_USERNAME"):
        monkeypatch.delenv(f"LEADROUTER_{var}", raising=False)
    return monkeypatch


def test_slack_sample_with_links(env: pytest.MonkeyPatch, capsys: Any) -> None:
    slack = Slack(TOKEN, users={"U0ALICE"})
    env.setenv("LEADROUTER_SLACK_TOKEN", TOKEN)
    env.setenv("LEADROUTER_SLACK_USERS", "alice=U0ALICE")
    env.setenv("LEADROUTER_SLACK_BASE_URL", slack.url)
    env.setenv("LEADROUTER_ACTION_SECRET", "s" * 32)
    env.setenv("LEADROUTER_PUBLIC_URL", "https://leads.example")
    with slack.api:
        code = main(["plugins", "test-notify", "slack", "--rep", "alice", "--rules", RULES])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "with action links" in out and "posted to D0ALICE" in out and out.endswith("sent\n")
    (message,) = slack.messages
    assert message["channel"] == "U0ALICE" and message["text"].startswith("New lead for you")
    buttons = message["blocks"][-1]["elements"]
    assert [b["action_id"] for b in buttons] == ["leadrouter_accept", "leadrouter_contacted",
                                                 "leadrouter_reject"]
    assert all(b["url"].startswith("https://leads.example/") for b in buttons)
    why = next(b["text"]["text"] for b in message["blocks"] if b["type"] == "section"
               and b["text"]["text"].startswith("*Why you*"))
    assert "territories: " in why  # the rules' own explanation of the sample lead


def test_slack_error_names_the_fix(env: pytest.MonkeyPatch, capsys: Any) -> None:
    slack = Slack(TOKEN, users={"U0ALICE"})
    env.setenv("LEADROUTER_SLACK_TOKEN", "xoxb-wrong")
    env.setenv("LEADROUTER_SLACK_USERS", "alice=U0ALICE")
    env.setenv("LEADROUTER_SLACK_BASE_URL", slack.url)
    with slack.api:
        code = main(["plugins", "test-notify", "slack", "--rep", "alice", "--rules", RULES])
    err = capsys.readouterr().err
    assert code == 1
    assert "refused for good" in err and "invalid_auth" in err
    assert "check LEADROUTER_SLACK_TOKEN" in err and slack.messages == []


def test_email_sample_with_a_lead_file(env: pytest.MonkeyPatch, capsys: Any,
                                       tmp_path: Path) -> None:
    lead = tmp_path / "lead.json"
    lead.write_text(json.dumps({"email": "kim@globex-labs.com", "first_name": "Kim",
                                "company": "Globex Labs", "employees": 5000, "country": "DE"}))
    with Smtp() as smtp:
        env.setenv("LEADROUTER_EMAIL_SMTP_HOST", "127.0.0.1")
        env.setenv("LEADROUTER_EMAIL_SMTP_PORT", str(smtp.port))
        env.setenv("LEADROUTER_EMAIL_SECURITY", "none")
        env.setenv("LEADROUTER_EMAIL_FROM", "lr@sales.example")
        env.setenv("LEADROUTER_EMAIL_REPS", "alice=alice@sales.example")
        code = main(["plugins", "test-notify", "email", "--rep", "alice", "--rules", RULES,
                     "--lead-json", str(lead), "--show"])
        out = capsys.readouterr().out
        assert code == 0, out
        (message,) = smtp.wait_for(1)
    assert "without action links" in out and "Subject: New lead for you: Kim" in out
    assert message["To"] == "alice@sales.example"
    plain = message.get_body(("plain",)).get_content()
    assert "Company: Globex Labs" in plain
    assert "(America/Los_Angeles)" in plain  # alice's zone in rules/reps.yaml


def test_a_warning_sample(env: pytest.MonkeyPatch, capsys: Any) -> None:
    slack = Slack(TOKEN, channels={"C0POOL"})
    env.setenv("LEADROUTER_SLACK_TOKEN", TOKEN)
    env.setenv("LEADROUTER_SLACK_CHANNELS", "na-enterprise=C0POOL")
    env.setenv("LEADROUTER_SLACK_BASE_URL", slack.url)
    with slack.api:
        code = main(["plugins", "test-notify", "slack", "--rep", "alice", "--rules", RULES,
                     "--type", "sla.warning", "--pool", "na-enterprise"])
    assert code == 0, capsys.readouterr()
    (message,) = slack.messages
    assert message["channel"] == "C0POOL"  # alice has no user id: the pool's channel
    assert message["blocks"][0]["text"]["text"] == "Lead due soon"
    assert re.search(r"\(\d+ min left\)", message["blocks"][-1]["elements"][0]["text"])


def test_refusals(env: pytest.MonkeyPatch, capsys: Any) -> None:
    env.setenv("LEADROUTER_EMAIL_SMTP_HOST", "127.0.0.1")
    env.setenv("LEADROUTER_EMAIL_SMTP_PORT", "9")  # nothing listens: refused
    env.setenv("LEADROUTER_EMAIL_SECURITY", "none")
    env.setenv("LEADROUTER_EMAIL_FROM", "lr@sales.example")
    env.setenv("LEADROUTER_EMAIL_REPS", "alice=alice@sales.example")
    assert main(["plugins", "test-notify", "email", "--rep", "alice", "--rules", RULES]) == 1
    assert "would retry it" in capsys.readouterr().err
    assert main(["plugins", "test-notify", "email", "--rep", "nobody", "--rules", RULES]) == 2
    assert "no rep 'nobody'" in capsys.readouterr().err
    env.delenv("LEADROUTER_SLACK_TOKEN", raising=False)
    assert main(["plugins", "test-notify", "slack", "--rep", "alice", "--rules", RULES]) == 1
    assert "disabled: not configured: set LEADROUTER_SLACK_TOKEN" in capsys.readouterr().err


def test_sample_links_are_made_without_a_store(env: pytest.MonkeyPatch) -> None:
    """test-notify signs its links with a LinkMaker (no store, no Redis); the service's check
    of a clicked link (ActionLinks is a LinkMaker with the single-use store) accepts them."""
    import argparse
    import datetime as dt

    from router.app.cli_notify import sample_event
    from router.engine.loader import load_directory
    from router.plugins.host import PluginHost
    from router.services.action_links import ActionLinks
    from router.services.link_signing import LinkMaker
    from router.settings import Settings

    assert not hasattr(LinkMaker(settings=Settings(), clock=lambda: dt.datetime.now(dt.UTC)),
                       "store")
    settings = Settings(action_secret="s" * 32, public_url="https://leads.example")
    host = PluginHost(budget=1.0)
    ruleset = load_directory(RULES, functions=host.functions())
    args = argparse.Namespace(lead_json=None, rep="alice", pool=None, type="lead.assigned")
    event = sample_event(args, ruleset, host, settings)
    links = event.data["links"]
    assert set(links) == {"accept", "contacted", "reject", "expires_at"}
    assert issubclass(ActionLinks, LinkMaker)  # the service checks a click with verify()
    service = LinkMaker(settings=settings, clock=lambda: dt.datetime.now(dt.UTC))
    for action in ("accept", "contacted", "reject"):
        url = links[action]
        assert url.startswith("https://leads.example/a/")
        claims = service.verify(url.rsplit("/", 1)[1])
        assert (claims.lead, claims.rep, claims.action) == (event.lead_id, "alice", action)
