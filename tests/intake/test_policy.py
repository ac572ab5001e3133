"""router/intake/policy.py: the ``leads:`` section of rules/intake.yaml — what every lead must
bring (a way to reach the person) and how a repeated ``external_id`` with other data answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from _intake import intake_config
from leadrouter_sdk import Lead

from router.engine.errors import RulesetError
from router.intake.policy import LeadPolicy, missing_contact, repeat_of


def _errors(text: str) -> list[str]:
    with pytest.raises(RulesetError) as info:
        intake_config(text)
    return [str(e) for e in info.value.errors]


def test_without_a_leads_section_email_or_phone_is_required_and_repeats_are_refused() -> None:
    policy = intake_config("forms: {}\n").leads
    assert policy == LeadPolicy(require_any_of=("email", "phone"), external_id_repeat="reject")


def test_the_section_compiles() -> None:
    policy = intake_config("leads:\n  require_any_of: [email, company, email]\n"
                           "  external_id_repeat: duplicate\n").leads
    assert policy.require_any_of == ("email", "company")  # duplicates dropped, order kept
    assert policy.external_id_repeat == "duplicate"
    assert intake_config("leads:\n  require_any_of: []\n").leads.require_any_of == ()
    assert intake_config("leads:\n").leads == LeadPolicy()  # an empty section: the defaults


def test_mistakes_are_refused_with_file_line_and_fix() -> None:
    assert _errors("leads:\n  require_any_of: [emial, phone]\n"
                   "  external_id_repeat: update\n") == [
        "intake.yaml:2:20: `emial` is not a lead field — did you mean `email`?",
    ]
    (error,) = _errors("leads:\n  external_id_repeat: overwrite\n")
    assert error.startswith("intake.yaml:2:") and "reject" in error and "duplicate" in error
    (error,) = _errors("leads:\n  require_any: [email]\n")
    assert error.startswith("intake.yaml:") and "did you mean `require_any_of`?" in error


def test_update_is_a_repeat_mode() -> None:
    assert intake_config("leads:\n  external_id_repeat: update\n").leads \
        .external_id_repeat == "update"


_SOURCES = """
sources:
  hubspot: {secret_env: HS_SECRET}
  segment: {secret_env: SEG_SECRET}
  crm: {type: json}
  strict-hubspot: {type: hubspot, secret_env: HS_SECRET, external_id_repeat: reject}
  crm2: {type: json, external_id_repeat: update}
"""


@pytest.mark.parametrize(("source", "leads", "repeat"), [
    ("hubspot", "reject", "update"),  # a CRM contact's changes are updates by default
    ("segment", "duplicate", "update"),
    ("crm", "reject", "reject"),  # other channels follow `leads:`
    ("crm", "duplicate", "duplicate"),
    ("strict-hubspot", "update", "reject"),  # a source's own setting wins
    ("crm2", "reject", "update"),
])
def test_each_source_has_its_repeat_mode(source: str, leads: str, repeat: str) -> None:
    config = intake_config(f"leads:\n  external_id_repeat: {leads}\n{_SOURCES}")
    channel = config.sources[source]
    assert repeat_of(config.leads, own=channel.external_id_repeat, kind=channel.type) == repeat


def test_a_source_repeat_mode_is_checked() -> None:
    (error,) = _errors("sources:\n  crm: {type: json, external_id_repeat: upsert}\n")
    assert error.startswith("intake.yaml:2:") and "update" in error


@pytest.mark.parametrize(("fields", "missing"), [
    ({}, ("email", "phone")),
    ({"first_name": "Ann", "company": "Acme"}, ("email", "phone")),
    ({"phone": "   "}, ("email", "phone")),  # blank is missing
    ({"email": "ann@acme.example"}, ()),
    ({"phone": "+1 555 0100"}, ()),
])
def test_missing_contact_names_the_fields_when_none_is_there(fields: dict[str, str],
                                                              missing: tuple[str, ...]) -> None:
    assert missing_contact(Lead(**fields), LeadPolicy()) == missing


def test_the_required_fields_are_the_configured_ones() -> None:
    lead = Lead(email="ann@acme.example")
    assert missing_contact(lead, LeadPolicy(require_any_of=("phone",))) == ("phone",)
    assert missing_contact(Lead(), LeadPolicy(require_any_of=())) == ()


def test_the_shipped_rules_update_hubspot_and_segment_leads() -> None:
    shipped = Path(__file__).parents[2] / "rules" / "intake.yaml"
    config = intake_config(shipped.read_text(encoding="utf-8"))
    assert config.leads.external_id_repeat == "reject"
    assert {name: repeat_of(config.leads, own=s.external_id_repeat, kind=s.type)
            for name, s in config.sources.items()} == \
        {"hubspot": "update", "segment": "update", "crm": "reject"}
    assert config.sources["hubspot"].external_id_repeat == "update"  # written out, not implied
