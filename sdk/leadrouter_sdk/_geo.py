"""Country and subdivision look-ups for ``Lead`` normalization.

Tables are built once from pycountry (lazily: loading its data costs ~60 ms per table) and keyed
by a folded form of the name (case, accents, punctuation and a leading "the" ignored), so
``"United States"``, ``"usa"``, ``"U.S.A."`` and ``"US"`` all land on the same entry.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

import pycountry

__all__ = ["country_code", "fold", "subdivision_code", "subdivision_country"]

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_SAINT = re.compile(r"\bst\b")

# Common names and abbreviations pycountry does not carry (keys are already folded).
_COUNTRY_ALIASES: dict[str, str] = {
    "uk": "GB", "u k": "GB", "great britain": "GB", "britain": "GB", "england": "GB",
    "scotland": "GB", "wales": "GB", "northern ireland": "GB",
    "usa": "US", "us": "US", "u s": "US", "u s a": "US", "america": "US",
    "united states america": "US",
    "korea": "KR", "south korea": "KR", "republic of korea": "KR", "north korea": "KP",
    "russia": "RU", "czech republic": "CZ", "turkey": "TR", "holland": "NL", "uae": "AE",
    "emirates": "AE", "ivory coast": "CI", "cape verde": "CV", "swaziland": "SZ",
    "macedonia": "MK", "burma": "MM", "east timor": "TL", "vatican": "VA", "vatican city": "VA",
    "holy see": "VA", "palestine": "PS", "drc": "CD", "dr congo": "CD",
    "democratic republic of congo": "CD", "congo brazzaville": "CG", "brunei": "BN",
    "macau": "MO", "micronesia": "FM", "ksa": "SA", "prc": "CN", "deutschland": "DE",
    "espana": "ES", "italia": "IT", "brasil": "BR", "schweiz": "CH", "suisse": "CH",
    "svizzera": "CH", "osterreich": "AT", "nederland": "NL", "belgique": "BE", "belgie": "BE",
    "sverige": "SE", "norge": "NO", "danmark": "DK", "suomi": "FI", "polska": "PL",
    "nippon": "JP", "nihon": "JP", "hrvatska": "HR", "magyarorszag": "HU", "ellada": "GR",
    "eire": "IE",
}

# English exonyms and everyday names for subdivisions whose ISO name is the local one.
_SUBDIVISION_ALIASES: dict[str, dict[str, str]] = {
    "DE": {
        "bavaria": "BY", "lower saxony": "NI", "north rhine westphalia": "NW",
        "rhineland palatinate": "RP", "saxony": "SN", "saxony anhalt": "ST", "thuringia": "TH",
        "hesse": "HE", "mecklenburg western pomerania": "MV",
    },
    "AT": {
        "vienna": "9", "lower austria": "3", "upper austria": "4", "styria": "6",
        "carinthia": "2", "tyrol": "7",
    },
    "CH": {"geneva": "GE", "lucerne": "LU", "grisons": "GR"},
    "ES": {
        "catalonia": "CT", "andalusia": "AN", "basque country": "PV", "valencia": "VC",
        "balearic islands": "IB", "canary islands": "CN", "navarre": "NC",
    },
    "IT": {"lombardy": "25", "tuscany": "52", "piedmont": "21", "sicily": "82", "sardinia": "88"},
    "MX": {"mexico city": "CMX", "cdmx": "CMX"},
    "US": {"washington dc": "DC", "washington d c": "DC"},
    "CA": {"newfoundland": "NL", "labrador": "NL", "pei": "PE"},
}


def fold(text: str) -> str:
    """Fold a name into a look-up key: ``"  Côte d'Ivoire "`` → ``"cote divoire"``."""
    s = text.casefold()
    if not s.isascii():
        s = unicodedata.normalize("NFKD", s)
        s = "".join(c for c in s if not unicodedata.combining(c))
    s = s.replace("&", " and ").replace(".", "").replace("'", "").replace("\u2019", "")
    s = _NON_ALNUM.sub(" ", s).strip()
    s = _SAINT.sub("saint", s)
    return s[4:] if s.startswith("the ") else s


def _variants(name: str) -> list[str]:
    """Alternative spellings hidden in ISO names.

    ``"Korea, Republic of"`` → ``"Republic of Korea"``, ``"Korea"``;
    ``"Catalunya [Cataluña]"`` → both; ``"Sofia (stolitsa)"`` → ``"Sofia"``.
    """
    out: list[str] = []
    for chunk in re.split(r"\s*[\[\]/]\s*", name):
        part = chunk.split("(", 1)[0].strip()
        if not part:
            continue
        out.append(part)
        if ", " in part:
            head, tail = part.split(", ", 1)
            out.extend((f"{tail} {head}", head))
    return out


def _put(table: dict[str, str], key: str, value: str) -> None:
    if key and key not in table:  # first writer wins: codes, then aliases, then names
        table[key] = value


def _put_names(table: dict[str, str], names: list[tuple[str, str]]) -> None:
    """Add full names, then the variants that point at exactly one entry."""
    for name, value in names:
        _put(table, fold(name), value)
    owners: dict[str, set[str]] = {}
    for name, value in names:
        for variant in _variants(name):
            owners.setdefault(fold(variant), set()).add(value)
    for key, values in owners.items():
        if len(values) == 1:  # "Virgin Islands" is both VG and VI: leave it out
            _put(table, key, next(iter(values)))


@lru_cache(maxsize=1)
def _country_table() -> dict[str, str]:
    table: dict[str, str] = {}
    countries = list(pycountry.countries)
    for c in countries:
        _put(table, c.alpha_2.lower(), c.alpha_2)
        _put(table, c.alpha_3.lower(), c.alpha_2)
        _put(table, c.numeric, c.alpha_2)
    for key, code in _COUNTRY_ALIASES.items():
        _put(table, key, code)
    names = [
        (name, c.alpha_2)
        for attr in ("name", "common_name", "official_name")
        for c in countries
        if (name := getattr(c, attr, None))
    ]
    _put_names(table, names)
    return table


@lru_cache(maxsize=4096)
def country_code(raw: str) -> str | None:
    """ISO 3166-1 alpha-2 code for a country code or name, or None when unknown."""
    if len(raw) == 2 and raw.isascii() and raw.isupper() and raw.isalpha():
        code = _country_table().get(raw.lower())
        if code is not None:
            return code
    return _country_table().get(fold(raw))


@lru_cache(maxsize=1)
def _subdivisions_by_country() -> dict[str, list[Any]]:
    by_country: dict[str, list[Any]] = {}
    for s in pycountry.subdivisions:
        by_country.setdefault(s.country_code, []).append(s)
    return by_country


@lru_cache(maxsize=512)
def _subdivision_table(country: str) -> dict[str, str]:
    subs = sorted(
        _subdivisions_by_country().get(country, ()),
        key=lambda s: (s.parent_code is not None, s.code),
    )
    table: dict[str, str] = {}
    for s in subs:
        suffix = s.code.split("-", 1)[1]
        _put(table, suffix.lower(), suffix)
        _put(table, fold(s.code), suffix)
    for key, suffix in _SUBDIVISION_ALIASES.get(country, {}).items():
        _put(table, key, suffix)
    # top-level subdivisions (states, Länder, regions) win over the ones below them
    _put_names(table, [(s.name, s.code.split("-", 1)[1]) for s in subs if s.parent_code is None])
    _put_names(table, [(s.name, s.code.split("-", 1)[1]) for s in subs if s.parent_code])
    return table


@lru_cache(maxsize=4096)
def subdivision_code(country: str, raw: str) -> str | None:
    """ISO 3166-2 suffix (``"CA"`` for US-CA) of a subdivision name or code in ``country``."""
    return _subdivision_table(country).get(fold(raw))


_FULL_CODE = re.compile(r"([A-Za-z]{2})-([A-Za-z0-9]{1,3})")


@lru_cache(maxsize=1024)
def subdivision_country(raw: str) -> tuple[str, str] | None:
    """``(country, suffix)`` for a full ISO 3166-2 code such as ``"US-CA"``, else None."""
    m = _FULL_CODE.fullmatch(raw)
    if m is None:
        return None
    country = m.group(1).upper()
    if country_code(country) != country:
        return None
    suffix = subdivision_code(country, raw)
    return (country, suffix) if suffix is not None else None
