"""Field normalizers used by ``Lead.__post_init__`` and the lenient decoders.

Each one is cheap on the common input (a regex match or a dict hit); the expensive parts
(pycountry tables, phonenumbers) are cached. Errors are ``FieldError``: a ``ValueError`` that
knows its field, says what is wrong and how to fix it, and never quotes personal data.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

import phonenumbers

from leadrouter_sdk._geo import country_code, subdivision_code, subdivision_country

__all__ = [
    "MAX_ATTRIBUTES",
    "AttributeValue",
    "FieldError",
    "normalize_attributes",
    "normalize_country",
    "normalize_domain",
    "normalize_email",
    "normalize_phone",
    "normalize_state",
    "not_finite",
    "parse_amount",
]

AttributeValue = str | int | float | bool | None
MAX_ATTRIBUTES = 100
_INT64 = (-(2**63), 2**63 - 1)


class FieldError(ValueError):
    """A ``ValueError`` about one ``Lead`` field (msgspec turns it into a ValidationError)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _quote(text: str) -> str:
    """Short, escaped rendering of a (non-personal) value for an error message."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


# --- email -------------------------------------------------------------------------------------

_ATOM = r"[^\s\"(),.:;<>@\[\\\]\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202f\u2060\ufeff]+"
_LABEL = r"[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?"
_TLD = r"(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})"
_LOCAL_RE = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_DOMAIN_RE = re.compile(rf"(?:{_LABEL}\.)+{_TLD}")
_EMAIL_RE = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+{_TLD}")


def _email_problem(email: str) -> str:
    at = email.count("@")
    if at == 0:
        return "it has no '@'"
    if at > 1:
        return "it has more than one '@'"
    local, domain = email.split("@")
    if not local:
        return "nothing comes before the '@'"
    if not domain:
        return "nothing comes after the '@'"
    if len(local) > 64:
        return "the part before the '@' is longer than 64 characters"
    if len(email) > 254:
        return "it is longer than 254 characters"
    if not _LOCAL_RE.fullmatch(local):
        return "the part before the '@' has a space, a character that is not allowed or a stray dot"
    if "." not in domain:
        return "the domain after the '@' has no dot"
    if not _DOMAIN_RE.fullmatch(domain):
        return (
            "the domain after the '@' has a space, a character that is not allowed,"
            " an empty label, a misplaced hyphen or a top-level domain that is not a name"
        )
    return "it is not in the form name@domain"  # pragma: no cover - regexes disagree


_ASCII_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ASCII_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_ASCII_EMAIL_RE = re.compile(  # a subset of _EMAIL_RE, three times faster
    rf"{_ASCII_ATOM}(?:\.{_ASCII_ATOM})*@(?:{_ASCII_LABEL}\.)+[a-z]{{2,63}}", re.ASCII
)


def normalize_email(value: str) -> str | None:
    """Trimmed, lower-cased address; raises FieldError when it is not an address."""
    email = value.strip().lower()
    if not email:
        return None
    if (
        len(email) <= 254
        and (_ASCII_EMAIL_RE.fullmatch(email) or _EMAIL_RE.fullmatch(email))
        and email.index("@") <= 64
    ):
        return email
    raise FieldError(
        "email",
        f"not a valid email address: {_email_problem(email)}"
        " — send a full address like jane@example.com",
    )


# --- domain ------------------------------------------------------------------------------------

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://|^//")


def _domain_step(text: str) -> str:
    s = _SCHEME.sub("", text)
    for sep in "/?#":
        s = s.split(sep, 1)[0]
    s = s.rsplit("@", 1)[-1]  # user@host, or an email address pasted as the website
    host, colon, port = s.rpartition(":")
    if colon and (port.isdigit() or not port):
        s = host
    s = s.strip().rstrip(".")
    while s.startswith("www.") and "." in s[4:]:
        s = s[4:]
    return s


@lru_cache(maxsize=8192)
def normalize_domain(value: str) -> str | None:
    """Bare host name from a domain or a pasted URL: ``https://www.Acme.com:443/x`` → ``acme.com``.

    Lenient: a value that yields no dotted host name is only trimmed and lower-cased.
    """
    sent = s = value.strip().lower()
    while (nxt := _domain_step(s)) != s:  # to a fixed point (every step shortens the text),
        s = nxt  # so that normalizing twice changes nothing
    if s and "." not in s:  # not a host name ("n/a", "Acme Corp"): keep what was sent
        s = sent
    if len(s) > 253:
        raise FieldError(
            "domain",
            "not a valid domain: it is longer than 253 characters"
            " — send the company's host name, like example.com",
        )
    return s or None


# --- country and state -------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def normalize_country(value: str) -> str | None:
    """ISO 3166-1 alpha-2 code of a country name or code; raises FieldError when unknown."""
    value = value.strip()
    if not value:
        return None
    code = country_code(value)
    if code is None:
        raise FieldError(
            "country",
            f"unknown country {_quote(value)}"
            " — use an ISO 3166 code such as US, DE, or an English country name",
        )
    return code


@lru_cache(maxsize=4096)
def normalize_state(raw: str, country: str | None) -> tuple[str | None, str | None]:
    """``(country, state)``: the ISO 3166-2 suffix when it resolves, else the trimmed input.

    A full code such as ``US-CA`` also fills in a missing country.
    """
    value = raw.strip()
    if not value:
        return country, None
    if country is not None:
        suffix = subdivision_code(country, value)
        if suffix is not None:
            return country, suffix
    elif "-" in value and len(value) <= 6:
        found = subdivision_country(value)
        if found is not None:
            return found
    return country, value.upper() if len(value) <= 3 else value


# --- phone -------------------------------------------------------------------------------------

# +1 415 555 0100, (415) 555-0100, 1-415-555-0100, 415.555.0100, +14155550100
_NANP = re.compile(
    r"(\+1|1)?[ .-]?\(?([2-9][0-9]{2})\)?[ .-]?([0-9]{3})[ .-]?([0-9]{4})", re.ASCII
)
_NANP_REGIONS = frozenset({"US", "CA"})
_phone_cache: dict[tuple[str, str | None], str] = {}


def _parse_phone(value: str, region: str | None) -> str:
    try:
        number = phonenumbers.parse(value, region)
        if phonenumbers.is_possible_number(number):
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            if len(e164) <= 16:
                return e164
    except Exception:  # noqa: S110 - a phone number never rejects a lead; keep the input
        pass
    return value


def normalize_phone(raw: str, region: str | None) -> str | None:
    """E.164 (``+14155550100``) when the number parses and is possible, else the trimmed input."""
    value = raw.strip()
    if not value:
        return None
    m = _NANP.fullmatch(value)  # fast path for the most common shape: a US/Canada number
    if m is not None:
        prefix, area, exchange, line = m.groups()
        if prefix == "+1" or region in _NANP_REGIONS:
            return f"+1{area}{exchange}{line}"
    key = (value, None if value.startswith("+") else region)
    found = _phone_cache.get(key)
    if found is None:
        found = _parse_phone(value, key[1])
        if len(_phone_cache) >= 8192:
            _phone_cache.clear()
        _phone_cache[key] = found
    return found


# --- numbers -----------------------------------------------------------------------------------

_AMOUNT = re.compile(
    r"""(?P<sign>[-+])?\s*
    (?:[$€£¥]|usd|eur|gbp|us\$)?\s*
    (?P<int>\d{1,3}(?:[,\s'_]\d{3})+|\d+)(?:\.(?P<frac>\d+))?
    \s*(?P<suffix>k|m|mm|mn|b|bn|thousand|million|billion)?
    \s*\+?\s*(?:usd|eur|gbp)?""",
    re.ASCII | re.IGNORECASE | re.VERBOSE,
)
_SEPARATORS = re.compile(r"[,\s'_]")
_MULTIPLIER = {
    None: 1, "k": 10**3, "thousand": 10**3, "m": 10**6, "mm": 10**6, "mn": 10**6,
    "million": 10**6, "b": 10**9, "bn": 10**9, "billion": 10**9,
}


def parse_amount(text: str) -> int | float | None:
    """``"1,200"`` → 1200, ``"$50,000"`` → 50000, ``"50k"`` → 50000, ``"1.5M"`` → 1500000.

    None when the text is not such an amount. Integral results are ints.
    """
    if len(text) > 64:  # no amount is that long (and int() refuses > 4300 digits)
        return None
    m = _AMOUNT.fullmatch(text.replace("\u00a0", " ").replace("\u202f", " ").strip())
    if m is None:
        return None
    sign, whole, frac, suffix = m.group("sign", "int", "frac", "suffix")
    scale = 10 ** len(frac) if frac else 1
    numerator = int(_SEPARATORS.sub("", whole)) * scale + (int(frac) if frac else 0)
    numerator *= _MULTIPLIER[suffix.lower() if suffix else None]
    if sign == "-":
        numerator = -numerator
    if numerator % scale == 0:
        return numerator // scale
    return float(numerator) / scale  # at most 64 characters: no overflow


def not_finite(field: str) -> FieldError:
    return FieldError(field, f"{field} must be a finite number — send an amount like 50000")


# --- attributes --------------------------------------------------------------------------------

_ATTR_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}", re.ASCII)


_good_keys: set[str] = set()  # attribute names repeat across leads: check each once


def _checked_key(raw_key: str) -> str:
    key = raw_key.strip()
    if not _ATTR_KEY.fullmatch(key):
        raise FieldError(
            "attributes",
            f"attribute name {_quote(key)} is not allowed — use 1-64 letters, digits,"
            " '_', '.' or '-', starting with a letter or '_' (like utm_source)",
        )
    if len(_good_keys) >= 4096:
        _good_keys.clear()
    _good_keys.add(key)
    return key


def normalize_attributes(attrs: dict[str, AttributeValue]) -> dict[str, AttributeValue]:
    """Trimmed keys and string values; checks names, count and number ranges."""
    if len(attrs) > MAX_ATTRIBUTES:
        raise FieldError(
            "attributes",
            f"too many attributes ({len(attrs)}): at most {MAX_ATTRIBUTES} are allowed"
            " — drop the ones no rule uses",
        )
    out: dict[str, AttributeValue] = {}
    for raw_key, value in attrs.items():
        key = raw_key
        if key not in _good_keys:
            key = _checked_key(raw_key)
        if key in out:
            raise FieldError(
                "attributes",
                f"attribute {_quote(key)} is sent twice (names are trimmed) — send it once",
            )
        if isinstance(value, str):
            out[key] = value.strip() or None
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise FieldError(
                "attributes",
                f"attribute {_quote(key)} is not a finite number — send a number or text",
            )
        if type(value) is int and not _INT64[0] <= value <= _INT64[1]:
            raise FieldError(
                "attributes",
                f"attribute {_quote(key)} does not fit in 64 bits — send it as text",
            )
        out[key] = value
    return out
