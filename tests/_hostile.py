"""Hostile input for the intake property tests (tests/intake/, tests/e2e/test_intake_http.py):
huge, unicode, control characters, injection attempts, wrong types. Every adapter must either
return items/leads or raise ``IntakeError`` (a 4xx naming the field) — never anything else."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from router.intake.items import Item
from router.intake.mapping import IntakeError, Limits

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
FAST = settings(max_examples=80, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def assert_items_or_4xx(adapter: Callable[[], Sequence[Item]]) -> None:
    """An adapter given hostile JSON answers items (each fine or a 4xx) or raises a 4xx."""
    try:
        items = adapter()
    except IntakeError as exc:
        assert 400 <= exc.status < 500
        return
    for item in items:
        assert item.error is None or 400 <= item.error.status < 500
