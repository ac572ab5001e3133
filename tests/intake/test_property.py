"""Hypothesis against every intake adapter with hostile input: huge, unicode, control
characters, injection attempts, wrong types. Each adapter either returns items/leads or raises
IntakeError (a 4xx naming the field) — never anything else — and redirects never leave the
allow-list. A last test sends such input over HTTP and sees no 5xx."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _intake import (
    SECRET_ENV,
    dumps,
    hubspot_headers,
    intake_rules,
    segment_headers,
    standard_headers,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.engine.loader import load_texts
from router.intake.config import IntakeConfig
from router.intake.form import parse_form, read_form, redirect_for
from router.intake.generic import json_items
from router.intake.hubspot import hubspot_items
from router.intake.mapping import IntakeError, Limits
from router.intake.segment import segment_items
from router.intake.signatures import verify_hubspot_v3, verify_segment, verify_standard

HOSTILE = [
    "", " ", "\x00", "\x00\x01\x1b[31m", "\u202eevil", "\ufeff", "\ud7ff",
    "\U0001d518\U0001d52b\U0001d526", "🙂" * 50,
    "' OR 1=1 --", "<script>alert(1)</script>", "{{7*7}}", "${jndi:ldap://x}", "../../etc/passwd",
    "a@b", "x" * 5000, "1e999", "-1", "NaN", "$5,000,000,000,000,000,000,000", "null", "true",
    "\r\nSet-Cookie: a=b", "=cmd|' /C calc'!A0", "%00", "\\u0000", "café", "ß" * 300,
]
text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=300),
                 st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
names = st.one_of(text, st.sampled_from(["email", "first_name", "employees", "country",
                                         "state", "phone", "00N5e00000ProdInt", "retURL",
                                         "attributes", "lead_source", "description", "url"]))
json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(names, inner, max_size=5)), max_leaves=20)
LIMITS = Limits(max_fields=50, max_value_chars=1000)
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _config() -> IntakeConfig:
    from _intake import INTAKE
    from _service import RULES

    files = {k: v for k, v in RULES.items() if "/" not in k}
    files["intake.yaml"] = INTAKE.format(port=1, form_rate="1/s", crm_rate="1/s")
    ruleset = load_texts(files)
    config: IntakeConfig = ruleset.intake
    return config


CONFIG = _config()
FORM = CONFIG.forms["contact"]
SOURCES = CONFIG.sources
FAST = settings(max_examples=80, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FAST
@given(st.lists(st.tuples(names, text), max_size=60))
def test_form_fields(pairs: list[tuple[str, str]]) -> None:
    try:
        post = read_form(FORM, pairs, NOW, LIMITS)
    except IntakeError as exc:
        assert 400 <= exc.status < 500 and exc.detail
        return
    assert post.redirect == FORM.thank_you or urllib.parse.urlsplit(
        post.redirect).hostname in FORM.redirect_hosts
    for value in (post.lead.first_name, post.lead.company, post.lead.description):
        assert value is None or not any(c in value for c in "\x00\x1b\u202e")


@FAST
@given(st.binary(max_size=3000), st.sampled_from([
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz",
    "multipart/form-data", "multipart/form-data; boundary=" + "b" * 300, "text/plain", ""]))
def test_form_bodies(body: bytes, ctype: str) -> None:
    try:
        pairs = parse_form(body, ctype, LIMITS)
        read_form(FORM, pairs, NOW, LIMITS)
    except IntakeError as exc:
        assert 400 <= exc.status < 500


@FAST
@given(text)
def test_redirects_stay_on_the_allow_list(ret: str) -> None:
    url = redirect_for(FORM, ret)
    assert url == FORM.thank_you or urllib.parse.urlsplit(url).hostname in FORM.redirect_hosts
    assert "\r" not in url and "\n" not in url


@pytest.mark.parametrize("adapter", ["hubspot", "segment", "crm"])
@FAST
@given(doc=json_value)
def test_machine_adapters(adapter: str, doc: Any) -> None:
    source = SOURCES[adapter]
    try:
        if adapter == "hubspot":
            items = hubspot_items(source, doc, dumps(doc), LIMITS)
        elif adapter == "segment":
            items = segment_items(source, doc, LIMITS)
        else:
            items = json_items(source, doc, LIMITS)
    except IntakeError as exc:
        assert 400 <= exc.status < 500
        return
    for item in items:
        assert item.error is None or 400 <= item.error.status < 500


shaped = st.fixed_dictionaries({
    "type": st.sampled_from(["identify", "track", "page", text]),
    "messageId": text, "userId": st.one_of(text, st.integers()), "event": text,
    "traits": st.dictionaries(st.sampled_from(["email", "firstName", "company", "address",
                                               "name", "phone"]), json_value, max_size=5),
})


@FAST
@given(shaped)
def test_segment_shaped_messages(doc: dict[str, Any]) -> None:
    try:
        segment_items(SOURCES["segment"], {"batch": [doc, doc]}, LIMITS)
    except IntakeError as exc:
        assert 400 <= exc.status < 500


@FAST
@given(st.lists(st.fixed_dictionaries({
    "subscriptionType": st.sampled_from(["contact.creation", "contact.propertyChange",
                                         "deal.creation", text]),
    "objectId": st.one_of(st.integers(), text), "portalId": st.one_of(st.integers(), text),
    "propertyName": names, "propertyValue": json_value}), max_size=20))
def test_hubspot_shaped_events(events: list[dict[str, Any]]) -> None:
    try:
        hubspot_items(SOURCES["hubspot"], events, b"", LIMITS)
    except IntakeError as exc:
        assert 400 <= exc.status < 500


@FAST
@given(st.one_of(st.none(), text), st.one_of(st.none(), text), st.one_of(st.none(), text),
       st.binary(max_size=200))
def test_signature_checks_only_refuse(a: str | None, b: str | None, c: str | None,
                                      body: bytes) -> None:
    for check in (
        lambda: verify_standard(["whsec_" + "QUJD" * 8, "plain"], msg_id=a, timestamp=b,
                                signature=c, body=body, now=1e9, tolerance=300),
        lambda: verify_hubspot_v3(["s"], method="POST", uri=a or "", body=body, timestamp=b,
                                  signature=c, now=1e9, tolerance=300),
        lambda: verify_segment(["s"], body=body, signature=a),
    ):
        with pytest.raises(IntakeError) as info:
            check()
        assert info.value.status == 401


# -- over HTTP: no 5xx for hostile input ------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, valkey_server: Any) -> Iterator[str]:
    import os

    import redis
    from _service import ADMIN_TOKEN, ThreadServer

    from router.app.application import create_app
    from router.settings import Settings

    os.environ.update(SECRET_ENV)
    url = f"redis://127.0.0.1:{valkey_server.port}/0"
    redis.Redis.from_url(url).flushdb()
    rules = intake_rules(tmp_path_factory.mktemp("prop") / "rules",
                         form_rate="100000/min", crm_rate="100000/min")
    server = ThreadServer(create_app(Settings(rules_dir=str(rules), redis_url=url,
                                              admin_token=ADMIN_TOKEN, reload_poll_seconds=0,
                                              key_prefix="lrprop:"))).start()
    try:
        yield server.url
    finally:
        server.stop()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(pairs=st.lists(st.tuples(names, text), max_size=20), doc=json_value)
def test_no_server_errors_over_http(live: str, pairs: list[tuple[str, str]], doc: Any) -> None:
    with httpx.Client(base_url=live, timeout=20) as client:
        form = urllib.parse.urlencode(pairs).encode()
        responses = [client.post("/v1/forms/contact", content=form, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})]
        body = dumps(doc)
        responses.append(client.post("/v1/sources/segment", content=body,
                                     headers=segment_headers(body)))
        responses.append(client.post("/v1/sources/hubspot", content=body,
                                     headers=hubspot_headers(f"{live}/v1/sources/hubspot", body)))
        responses.append(client.post("/v1/sources/crm", content=body,
                                     headers=standard_headers(body, f"m{hash(body)}")))
    for response in responses:
        assert response.status_code < 500, (response.request.url, response.text[:300])
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")

