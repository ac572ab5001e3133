"""The built-in expression functions (router/engine/functions.py), called directly. Their use
inside rules: tests/engine/test_expr.py and test_expr_property.py."""

from __future__ import annotations

import datetime as dt

import pytest

from router.engine.functions import (
    BOOL,
    BUILTINS,
    NUM,
    STR,
    TIME,
    domain_of,
    is_disposable_domain,
    is_free_domain,
)


@pytest.mark.parametrize(("value", "host"), [
    ("Jane.Doe@Acme.COM", "acme.com"), ("a@b@sub.acme.com", "sub.acme.com"),
    ("https://www.acme.com/pricing?x=1", "acme.com"), ("acme.com:8443/x", "acme.com"),
    ("www.acme.com", "acme.com"), (" http://ACME.io ", "acme.io"), ("", None), (None, None),
    (42, None), ("jane@", None)])
def test_domain_of_emails_and_urls(value: object, host: str | None) -> None:
    assert domain_of(value) == host


def test_free_and_disposable_domains() -> None:
    assert is_free_domain("gmail.com") and not is_free_domain("acme-corp.example")
    assert is_disposable_domain("mailinator.com") and not is_disposable_domain("gmail.com")
    assert not is_free_domain(None) and not is_disposable_domain(None)
    assert BUILTINS["is_free_email"].impl("Someone@GMAIL.com") is True  # type: ignore[misc]
    assert BUILTINS["is_disposable_email"].impl("x@mailinator.com") is True  # type: ignore[misc]
    assert BUILTINS["is_free_email"].impl(None) is False  # type: ignore[misc]


def _call(name: str, *args: object) -> object:
    impl = BUILTINS[name].impl
    assert impl is not None, name
    return impl(*args)


def test_text_functions_are_null_safe() -> None:
    assert (_call("lower", "SaaS"), _call("upper", "ca"), _call("lower", None)) == \
        ("saas", "CA", None)
    assert _call("contains", "State University", "Univ") is True
    assert _call("contains", None, "x") is False and _call("contains", "x", None) is False
    assert _call("startswith", "94107", "94") is True and _call("startswith", 94107, "94") is False
    assert _call("endswith", "mit.edu", ".edu") is True and _call("endswith", None, "") is False
    assert (_call("len", "abc"), _call("len", [1, 2]), _call("len", None), _call("len", 5)) == \
        (3, 2, None, None)
    assert (_call("region", "de"), _call("region", "US"), _call("region", "ZZ"),
            _call("region", None)) == ("EMEA", "NA", None, None)


def test_days_since_is_fractional_and_reads_the_given_now() -> None:
    now = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
    assert _call("days_since", now - dt.timedelta(hours=36), now) == 1.5
    naive = dt.datetime(2026, 3, 1, 12, 0)  # taken as UTC
    assert _call("days_since", naive, now) == 1.0
    assert _call("days_since", None, now) is None and _call("days_since", "2026-03-01", now) is None


def test_signatures_of_the_builtins() -> None:
    sig = {name: (f.params, f.returns) for name, f in BUILTINS.items()}
    assert sig["domain"] == ((STR,), STR) and sig["matches"] == ((STR, STR), BOOL)
    assert sig["days_since"] == ((TIME,), NUM) and sig["count"] == ((STR,), NUM)
    assert BUILTINS["count"].keywords == {"days": NUM}
    # the engine implements these itself: they carry no Python implementation
    assert {n for n, f in BUILTINS.items() if f.impl is None} == {"hit", "count", "last"}
    for name, f in BUILTINS.items():
        assert f.name == name and f.doc and f.example.startswith(name), name
