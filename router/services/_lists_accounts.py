"""Parsing an accounts import (``POST /v1/accounts:import``): CSV or JSON lines → rows,
every bad line reported with its number and how to fix it (nothing is imported then)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec

from router.engine.functions import domain_of
from router.services.lists_model import (
    AccountRow,
    ImportLineError,
    ImportRejected,
    UnsupportedImport,
)

__all__ = ["CSV_TYPES", "JSONL_TYPES", "parse_accounts"]

CSV_TYPES = ("text/csv", "application/csv")
JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines",
               "application/x-jsonlines")
_MAX_ERRORS = 1000  # reported; the count says how many in all


class _Line(msgspec.Struct, forbid_unknown_fields=True):
    domain: str
    owner: str


def _csv(text: str) -> Iterator[tuple[int, Any]]:
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    if "domain" not in header or "owner" not in header:
        yield 1, ImportLineError(line=1, message=f"the header is {','.join(header)!r}",
                                 fix="start the CSV with the header line `domain,owner`")
        return
    d, o = header.index("domain"), header.index("owner")
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield line, ImportLineError(line=line, message=f"{len(row)} fields, not "
                                        f"{len(header)}", fix="write `domain,owner` on it")
            continue
        yield line, (row[d].strip(), row[o].strip())


def _jsonl(text: str) -> Iterator[tuple[int, Any]]:
    decode = msgspec.json.Decoder(_Line).decode
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = decode(raw)
        except msgspec.DecodeError as exc:
            yield line, ImportLineError(line=line, message=str(exc),
                                        fix='write {"domain": "acme.com", "owner": "<rep id>"}')
            continue
        yield line, (item.domain.strip(), item.owner.strip())


def parse_accounts(body: bytes, content_type: str,
                   reps: Mapping[str, Any]) -> list[AccountRow]:
    """The rows of ``body`` (CSV by ``text/csv``, else JSON lines); ImportRejected with every
    bad line: not a domain, a rep not in the rules, a domain given twice, a malformed line.
    UnsupportedImport for another content type, ValueError for a body not in UTF-8."""
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    if kind not in CSV_TYPES + JSONL_TYPES:
        raise UnsupportedImport(f"Content-Type {kind or 'missing'!r}: send text/csv (header "
                         "`domain,owner`) or application/x-ndjson (one JSON object a line)")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"the body is not UTF-8 ({exc.reason} at byte {exc.start}): "
                         "save it as UTF-8") from None
    errors: list[ImportLineError] = []
    rows: list[AccountRow] = []
    seen: dict[str, int] = {}
    for line, item in (_csv(text) if kind in CSV_TYPES else _jsonl(text)):
        if isinstance(item, ImportLineError):
            errors.append(item)
            continue
        raw, owner = item
        domain = domain_of(raw)
        if not domain or "." not in domain or len(domain) > 253 or "\x1f" in domain:
            errors.append(ImportLineError(line=line, message=f"{raw!r} is not a company domain",
                                          fix="write the domain alone, e.g. acme.com"))
        elif owner not in reps:
            errors.append(ImportLineError(
                line=line, message=f"{owner!r} is not a rep in rules/reps.yaml",
                fix=f"use a rep id of the rules (e.g. {', '.join(sorted(reps)[:3])})"))
        elif domain in seen:
            errors.append(ImportLineError(
                line=line, message=f"{domain} is on line {seen[domain]} already",
                fix="keep one line per domain"))
        else:
            seen[domain] = line
            rows.append(AccountRow(domain=domain, owner=owner))
    if errors:
        raise ImportRejected(errors[:_MAX_ERRORS])
    return rows
