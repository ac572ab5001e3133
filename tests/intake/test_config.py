"""router/intake/config.py: the ``forms:`` and ``sources:`` sections of rules/intake.yaml as the
rules loader compiles them — defaults filled in as docs/intake.md promises, rates parsed, and
every mistake refused with ``file:line:column``, the form or source, and how to fix it."""

from __future__ import annotations

import pytest
from _intake import intake_config

from router.engine.errors import RulesetError
from router.intake.config import FieldMap, RateSpec, parse_rate


@pytest.mark.parametrize(("text", "limit", "period"), [
    ("10/min", 10, 60), ("600/minute", 600, 60), ("5/10s", 5, 10), ("1000/h", 1000, 3600),
    ("20000/day", 20000, 86400), (" 3 / 2 hours ", 3, 7200), ("20/min", 20, 60),
])
def test_rates(text: str, limit: int, period: int) -> None:
    assert parse_rate(text) == RateSpec(limit, period)


@pytest.mark.parametrize(("text", "message"), [
    ("ten/min", "'ten/min' is not a rate such as 10/min, 600/h or 5/10s"),
    ("10/fortnight", "is not a rate"),
    ("0/min", "'0/min': the limit and the period must be positive"),
    ("5/0s", "the limit and the period must be positive"),
])
def test_bad_rates_say_what_a_rate_looks_like(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_rate(text)


def test_a_form_gets_the_documented_defaults() -> None:
    form = intake_config("forms:\n  contact-us:\n    thank_you: https://www.example.com/thanks\n"
                         "    origins: [HTTPS://WWW.Example.com/]\n"
                         "    redirect_hosts: [Example.com.]\n").forms["contact-us"]
    assert form.source == "form:contact-us"
    assert form.redirect_hosts == {"example.com", "www.example.com"}  # + the thank-you host
    assert form.origins == {"https://www.example.com"}
    assert (form.honeypot, form.min_fill_seconds, form.fill_time_field) == (
        None, None, "lr_started")
    assert (form.rate_limit, form.error_url, form.unmapped) == (None, None, "attributes")


def test_field_mappings_compile_to_targets_transforms_and_tables() -> None:
    form = intake_config().forms["contact"]
    assert form.fields["00N5e00000ProdInt"] == FieldMap(
        source="00N5e00000ProdInt", target="attributes.product_interest", transforms=("lower",))
    band = form.fields["employees_band"]
    assert (band.target, band.table) == ("employees", {"1-10": 10, "1000+": 5000})
    custom = intake_config("""\
forms:
  f:
    thank_you: https://x.example/thanks
    fields:
      Name: full_name
      Budget: {to: budget, transform: [digits], map: {"Lots": 1000000}, default: 0}
""").forms["f"].fields
    assert custom["Name"].target == "full_name"
    assert custom["Budget"] == FieldMap(source="Budget", target="budget", transforms=("digits",),
                                        table={"lots": 1000000}, default=0)


def test_sources_default_their_type_auth_and_unmapped_policy() -> None:
    sources = intake_config().sources
    hubspot, segment, crm = sources["hubspot"], sources["segment"], sources["crm"]
    assert (hubspot.type, hubspot.auth, hubspot.unmapped) == ("hubspot", ("hubspot_v3",), "ignore")
    assert (segment.type, segment.auth, segment.unmapped) == (
        "segment", ("segment_signature",), "ignore")
    assert (crm.type, crm.auth, crm.unmapped) == (
        "json", ("api_key", "standard_webhooks"), "attributes")
    assert crm.tolerance == 300 and crm.source == "crm" and crm.events
    assert crm.rate_limit == RateSpec(1000, 60) and crm.secret_env == "LR_TEST_CRM_SECRET"
    keyed = intake_config("sources:\n  erp: {type: json, tolerance: 90s, route_on: [email]}\n")
    assert keyed.sources["erp"].auth == ("api_key",)  # a key needs no secret_env
    assert keyed.sources["erp"].tolerance == 90
    assert keyed.sources["erp"].route_on == {"email"}


def errors_of(text: str) -> list[str]:
    with pytest.raises(RulesetError) as info:
        intake_config(text)
    return [str(e) for e in info.value.errors]


def test_mistakes_are_refused_with_file_line_and_fix() -> None:
    assert errors_of("""\
forms:
  contact:
    thank_you: http://www.example.com/thanks
    rate_limit: ten per minute
    fields:
      a: {to: emial}
      b: {to: company, transform: shout}
  Contact Us:
    thank_you: https://x.example/
sources:
  crm:
    auth: [api_key]
  hs:
    type: hubspot
  seg:
    type: segment
    auth: [segment_sig]
    secret_env: X
""") == [
        "intake.yaml:3:16: contact: `http://www.example.com/thanks` is not an absolute https "
        "URL — write e.g. https://www.example.com/thanks",
        "intake.yaml:4:17: contact: 'ten per minute' is not a rate such as 10/min, 600/h or "
        "5/10s — write e.g. 10/min",
        "intake.yaml:6:10: contact: `emial` is not a lead field — did you mean `email`? (or "
        "attributes.<name>, full_name, ignore)",
        "intake.yaml:7:10: contact: unknown transform `shout` — use one of: lower, upper, "
        "title, digits, yes_no, first_line",
        "intake.yaml:8:3: `Contact Us` is not a valid id — use lower-case letters, digits, '-' "
        "and '_' (it is part of the URL)",
        "intake.yaml:11:3: crm: source `crm` needs a `type` — add `type: json` (types: "
        "hubspot, segment, json)",
        "intake.yaml:13:3: hs: signature checks need `secret_env` — name the environment "
        "variable holding the secret, e.g. secret_env: LEADROUTER_SECRET_HS",
        "intake.yaml:17:12: seg: unknown auth method `segment_sig` — did you mean "
        "`segment_signature`?",
    ]


@pytest.mark.parametrize(("yaml", "expected"), [
    ("forms:\n  f: {thank_you: https://x.example/t, origins: [https://x.example/page]}\n",
     "`https://x.example/page` is not an origin — write scheme and host only"),
    ("forms:\n  f: {thank_you: https://x.example/t, defaults: {colour: red}}\n",
     "`colour` is not a lead field"),
    ("forms:\n  f: {thank_you: https://x.example/t, honeypott: w}\n", "honeypott"),
    ("forms:\n  f: {thank_you: https://x.example/t, min_fill_seconds: 7200}\n", "3600"),
    ("sources:\n  crm: {type: json, auth: []}\n", "a source needs at least one auth method"),
    ("sources:\n  crm: {type: json, tolerance: soon}\n", "'soon' is not a duration"),
    ("forms: [contact]\n", "`forms` must map ids to settings"),
])
def test_each_kind_of_mistake_names_itself(yaml: str, expected: str) -> None:
    (error,) = errors_of(yaml)
    assert error.startswith("intake.yaml:") and expected in error, error


def test_http_is_accepted_for_localhost_only() -> None:
    config = intake_config("forms:\n  dev: {thank_you: 'http://localhost:8080/thanks'}\n")
    assert config.forms["dev"].redirect_hosts == {"localhost"}
    assert "not an absolute https URL" in errors_of(
        "forms:\n  dev: {thank_you: 'http://example.com/thanks'}\n")[0]
