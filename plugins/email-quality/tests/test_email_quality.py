"""email-quality through the SDK harness: contributions, configuration, rule functions."""

from __future__ import annotations

from typing import Any

import pytest
from leadrouter_email_quality import SUGGESTED_POINTS, EmailQuality, _parse_points

RULES = {"rules.yaml": """\
scoring:
  fit:
    - {id: fit.person, when: 'email_quality(email) == "ok"', points: 60}
qualification:
  - {id: q.bad, status: bad_lead, when: 'email_quality(email) == "disposable"'}
  - {id: q.role, status: nurture, when: "is_role_email(email)"}
  - {id: q.mql, status: mql, when: "score >= 50"}
"""}


@pytest.mark.parametrize(("email", "rules"), [
    ("jane.doe@acme.com", []),
    ("info@acme.com", [("email.role", -10)]),
    ("Sales+eu@Acme.com", [("email.role", -10)]),
    ("jo@gmail.com", [("email.free", -10)]),
    ("support@gmail.com", [("email.role", -10), ("email.free", -10)]),
    ("x@mailinator.com", [("email.disposable", -40)]),
    ("a@b.test", [("email.invalid", -25)]),
])
def test_findings_become_fit_contributions(leadrouter: Any, make_lead: Any, email: str,
                                           rules: list[tuple[str, float]]) -> None:
    result = leadrouter(EmailQuality(SUGGESTED_POINTS)).evaluate(make_lead(email=email))
    got = [(c.rule, c.points) for c in result.contributions() if c.rule.startswith("email.")]
    assert got == rules
    assert all(c.group == "fit" and c.reason for c in result.contributions("email.role"))


@pytest.mark.parametrize(("email", "rules"), [
    ("info@gmail.com", []), ("x@mailinator.com", []), ("a@b.test", [("email.invalid", -25)]),
])
def test_by_default_only_what_the_shipped_rules_do_not_score(
        monkeypatch: pytest.MonkeyPatch, leadrouter: Any, make_lead: Any, email: str,
        rules: list[tuple[str, float]]) -> None:
    # rules/scoring.yaml has fit.email.role/free/disposable: the plugin must not count them again
    monkeypatch.delenv("LEADROUTER_EMAIL_QUALITY_POINTS", raising=False)
    contributions = leadrouter(EmailQuality()).score(make_lead(email=email))
    assert [(c.rule, c.points) for c in contributions] == rules


def test_no_email_no_contribution(leadrouter: Any, make_lead: Any) -> None:
    assert leadrouter(EmailQuality({})).score(make_lead(email=None)) == ()


def test_points_are_configurable(monkeypatch: pytest.MonkeyPatch, leadrouter: Any,
                                 make_lead: Any) -> None:
    monkeypatch.setenv("LEADROUTER_EMAIL_QUALITY_POINTS", "free=0, role=-3")
    plugin = EmailQuality()
    assert plugin.points == {"role": -3, "free": 0, "disposable": 0, "invalid": -25}
    contributions = leadrouter(plugin).score(make_lead(email="info@gmail.com"))
    assert [(c.rule, c.points) for c in contributions] == [("email.role", -3)]
    with pytest.raises(ValueError, match="unknown finding 'spam'"):
        _parse_points("spam=-5")


def test_rule_functions(leadrouter: Any, make_lead: Any) -> None:
    h = leadrouter(EmailQuality({}), rules=RULES)
    assert h.evaluate(make_lead(email="jane@acme.com")).status == "mql"
    assert h.evaluate(make_lead(email="x@mailinator.com")).status == "bad_lead"
    assert h.evaluate(make_lead(email="info@acme.com")).status == "nurture"
    assert h.evaluate(make_lead(email=None)).status == "nurture"  # null-safe


def test_findings_are_memoised() -> None:
    plugin = EmailQuality({})
    first = plugin.check("info@acme.com")
    assert plugin.check("info@acme.com") is first
    assert first.quality == "role"
