"""router/intake/form.py: HTML form posts — both encodings parsed, Salesforce Web-to-Lead field
names mapped, spam recognised (honeypot, fill time), bad values refused naming the form field,
limits enforced, and redirects that never leave the allow-list. Property tests feed it hostile
fields and bodies: a lead or a 4xx ``IntakeError``, nothing else."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

import pytest
from _hostile import FAST, LIMITS, NOW, names, text
from _intake import intake_config, started
from hypothesis import given
from hypothesis import strategies as st

from router.intake.form import WEB_TO_LEAD, parse_form, read_form, redirect_for, spam_reason
from router.intake.mapping import IntakeError, Limits

FORM = intake_config().forms["contact"]
URLENCODED = "application/x-www-form-urlencoded"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def refused(call: Any) -> IntakeError:
    with pytest.raises(IntakeError) as info:
        call()
    return info.value


def test_an_unchanged_web_to_lead_form_maps_to_lead_fields() -> None:
    pairs = [("oid", "00D000000000001"), ("retURL", "https://www.example.com/welcome"),
             ("first_name", "Ana"), ("last_name", "Lima"), ("email", "Ana.Lima@BigCo.example"),
             ("company", "BigCo"), ("title", "VP Sales"), ("city", "New York"), ("state", "NY"),
             ("zip", "10001"), ("country", "US"), ("lead_source", "Webinar"),
             ("URL", "https://www.bigco.example/about"), ("revenue", "$50k"),
             ("description", "Call me"), ("debug", "1"), ("lr_started", started())]
    post = read_form(FORM, pairs, now(), LIMITS)
    got = post.lead
    assert (got.first_name, got.last_name, got.email, got.company, got.title) == (
        "Ana", "Lima", "ana.lima@bigco.example", "BigCo", "VP Sales")
    assert (got.city, got.state, got.postal_code, got.country) == ("New York", "NY", "10001",
                                                                   "US")
    assert (got.source, got.domain, got.annual_revenue, got.description) == (
        "Webinar", "bigco.example", 50_000, "Call me")  # a posted lead_source wins
    assert got.attributes == {}  # oid, debug, retURL and lr_started are not lead data
    assert post.spam is None and post.redirect == "https://www.example.com/welcome"
    assert WEB_TO_LEAD["zip"] == "postal_code" and WEB_TO_LEAD["oid"] == "ignore"


def test_configured_fields_and_unmapped_fields() -> None:
    post = read_form(FORM, [("email", "a@b.example"), ("00N5e00000ProdInt", "ROUTING"),
                            ("employees_band", "1000+"), ("favourite colour", "blue"),
                            ("interest", "a"), ("interest", "b"),
                            ("lr_started", started())], now(), LIMITS)
    assert post.lead.employees == 5000 and post.lead.source == "web"  # the form's source
    assert post.lead.attributes == {"product_interest": "routing",
                                    "favourite_colour": "blue", "interest": "a; b"}


def test_a_bad_value_is_refused_naming_the_form_field() -> None:
    error = refused(lambda: read_form(FORM, [("email", "not-an-email")], now(), LIMITS))
    assert (error.status, error.field, error.kind) == (422, "email", "validation")
    assert "not a valid email address" in error.detail
    error = refused(lambda: read_form(FORM, [("email", "a@b.example"),
                                             ("employees_band", "lots")], now(), LIMITS))
    assert (error.status, error.field) == (422, "employees_band")
    assert error.detail.startswith("`employees_band` (lead field employees)")


def test_limits_are_enforced() -> None:
    error = refused(lambda: read_form(FORM, [(f"f{i}", "1") for i in range(51)], now(),
                                      Limits(max_fields=50)))
    assert (error.status, error.kind, error.field) == (413, "too-many-fields", "f50")
    error = refused(lambda: read_form(FORM, [("description", "x" * 101)], now(),
                                      Limits(max_value_chars=100)))
    assert (error.status, error.kind, error.field) == (422, "field-too-long", "description")
    body = "&".join(f"f{i}=1" for i in range(60)).encode()
    error = refused(lambda: parse_form(body, URLENCODED, Limits(max_fields=50)))
    assert (error.status, error.kind) == (413, "too-many-fields")


def test_spam_is_recognised_not_refused() -> None:
    at = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
    ms = int(at.timestamp() * 1000)  # what the page's Date.now() put in lr_started

    def spam(*pairs: tuple[str, str]) -> str | None:
        return read_form(FORM, [("email", "a@b.example"), *pairs], at, LIMITS).spam

    assert spam(("lr_started", str(ms - 30_000))) is None
    assert spam(("website_url", "http://buy.example"), ("lr_started", str(ms - 30_000))) == \
        "spam: the hidden honeypot field `website_url` was filled"
    assert spam() == ("spam: no page-load time in `lr_started` (the form needs the snippet "
                      "that sets it, see docs/intake.md)")
    assert spam(("lr_started", str(ms - 500))) == \
        "spam: submitted 0.5s after the page loaded (minimum 2s)"
    assert spam(("lr_started", "inf")) == "spam: `lr_started` is not a time"
    # seconds work as well as JavaScript's milliseconds
    assert spam_reason(FORM, {"lr_started": str(int(at.timestamp()) - 30)}, at) is None
    # a form without the checks never calls a post spam
    assert spam_reason(intake_config().forms["open"], {}, at) is None


def test_urlencoded_bodies_including_latin_1_pages() -> None:
    assert parse_form(b"first_name=Ana&email=a%40b.example&x=&x=2", URLENCODED, LIMITS) == [
        ("first_name", "Ana"), ("email", "a@b.example"), ("x", ""), ("x", "2")]
    assert parse_form(b"company=Caf\xe9", URLENCODED + "; charset=iso-8859-1", LIMITS) == [
        ("company", "Caf\u00e9")]


MULTIPART = (b'--xyz\r\nContent-Disposition: form-data; name="email"\r\n\r\na@b.example\r\n'
             b'--xyz\r\nContent-Disposition: form-data; name="company"\r\n\r\nBigCo\r\n'
             b'--xyz--\r\n')


def test_multipart_bodies_text_only() -> None:
    assert parse_form(MULTIPART, 'multipart/form-data; boundary="xyz"', LIMITS) == [
        ("email", "a@b.example"), ("company", "BigCo")]
    upload = (b'--xyz\r\nContent-Disposition: form-data; name="cv"; filename="cv.pdf"\r\n'
              b'Content-Type: application/pdf\r\n\r\n%PDF\r\n--xyz--\r\n')
    error = refused(lambda: parse_form(upload, "multipart/form-data; boundary=xyz", LIMITS))
    assert (error.status, error.kind, error.field) == (415, "file-upload", "cv")
    error = refused(lambda: parse_form(MULTIPART[:40], "multipart/form-data; boundary=xyz",
                                       LIMITS))
    assert (error.status, error.kind) == (400, "malformed-form")
    error = refused(lambda: parse_form(MULTIPART, "multipart/form-data", LIMITS))
    assert (error.status, error.kind) == (400, "malformed-form")
    many = b"".join(b'--xyz\r\nContent-Disposition: form-data; name="f%d"\r\n\r\n1\r\n' % i
                    for i in range(60)) + b"--xyz--\r\n"
    error = refused(lambda: parse_form(many, "multipart/form-data; boundary=xyz",
                                       Limits(max_fields=50)))
    assert (error.status, error.kind) == (413, "form-too-large")


def test_other_media_types_are_refused_with_where_json_goes() -> None:
    error = refused(lambda: parse_form(b"{}", "application/json", LIMITS))
    assert (error.status, error.kind) == (415, "unsupported-media-type")
    assert error.detail.endswith("JSON goes to /v1/leads")


@pytest.mark.parametrize(("ret", "expected"), [
    ("https://www.example.com/welcome?x=1", "https://www.example.com/welcome?x=1"),
    ("https://www.example.com./x", "https://www.example.com./x"),
    (None, FORM.thank_you), ("", FORM.thank_you),
    ("//evil.example", FORM.thank_you),
    ("javascript:alert(1)", FORM.thank_you),
    ("https://www.example.com@evil.example/", FORM.thank_you),
    ("https://www.example.com/a\r\nSet-Cookie: x=1", FORM.thank_you),
    ("http://www.example.com/plain-http", FORM.thank_you),
    ("https://evil.example/", FORM.thank_you),
    ("https://www.example.com:99999/", FORM.thank_you),
    ("/relative/path", FORM.thank_you),
])
def test_redirects(ret: str | None, expected: str) -> None:
    assert redirect_for(FORM, ret) == expected


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
