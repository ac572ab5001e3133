"""leadrouter plugin: company data from a local CSV file, keyed by domain.

A lead that names its company's website (``domain``) or writes from a company address gets
the company's ``employees``, ``industry``, ``annual_revenue`` (and ``company``, ``country``,
``state``, ``city`` when the file has them) filled in before scoring, so fit rules such as
``employees >= 1000`` work for leads that did not state them. What the lead states always wins.

The file is CSV with a header row; ``domain`` is required, every other column optional and
empty cells are skipped. Recognised columns: ``domain``, ``company`` (or ``name``),
``employees``, ``industry``, ``annual_revenue`` (or ``revenue``), ``country``, ``state``,
``city``. Numbers may be written like lead input (``1,200``, ``50k``, ``$1.5M``). Domains are
matched without ``www.``, and a sub-domain falls back to its parent (``eu.acme.com`` →
``acme.com``). The file is re-read when it changes (checked at most every 5 seconds).

Configuration (environment): ``LEADROUTER_FIRMOGRAPHICS_FILE`` (the CSV path). Without it the
plugin is installed but disabled. (Parquet is not supported: reading it needs pyarrow, a heavy
dependency for a lookup table; convert with any tool to CSV.)
"""

from __future__ import annotations

import contextlib
import csv
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import msgspec
from leadrouter_sdk import Lead, PluginDisabled, hookimpl, lead_from_mapping

__all__ = ["COLUMNS", "Firmographics", "load_companies"]
__version__ = "0.1.0"

COLUMNS: Final = {
    "domain": "domain", "company": "company", "name": "company", "employees": "employees",
    "industry": "industry", "annual_revenue": "annual_revenue", "revenue": "annual_revenue",
    "country": "country", "state": "state", "city": "city",
}
_FILLS: Final = ("company", "employees", "industry", "annual_revenue", "country", "state",
                 "city")
_CHECK_EVERY_S: Final = 5.0


def _host(value: str) -> str:
    host = value.strip().lower().rstrip(".")
    if "://" in host:
        host = host.split("://", 1)[1]
    host = host.split("/", 1)[0]
    return host[4:] if host.startswith("www.") else host


def load_companies(path: str | Path) -> dict[str, dict[str, Any]]:
    """``{domain: {field: value}}`` from the CSV at ``path``, values validated and normalised
    like lead input (``"1,200"`` → 1200, ``Germany`` → ``DE``) once, here, so enriching a lead
    costs a dict lookup; raises ValueError naming the line of the first problem."""
    companies: dict[str, dict[str, Any]] = {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [(h or "").strip().lower() for h in reader.fieldnames or ()]
        if "domain" not in header:
            raise ValueError(f"{path}: the header has no `domain` column (found: "
                             f"{', '.join(header) or 'nothing'})")
        for row in reader:
            fields: dict[str, str] = {}
            for raw_key, raw_value in row.items():
                key = COLUMNS.get((raw_key or "").strip().lower())
                value = (raw_value or "").strip() if isinstance(raw_value, str) else ""
                if key and value:
                    fields[key] = value
            domain = _host(fields.pop("domain", ""))
            if not domain:
                raise ValueError(f"{path}:{reader.line_num}: row without a domain")
            try:
                company = lead_from_mapping(fields)
            except msgspec.ValidationError as exc:
                raise ValueError(f"{path}:{reader.line_num}: {exc}") from None
            companies[domain] = {k: getattr(company, k) for k in fields}
    return companies


class Firmographics:
    """The plugin. ``path``: the CSV file (default ``$LEADROUTER_FIRMOGRAPHICS_FILE``)."""

    name = "firmographics"

    def __init__(self, path: str | Path | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        path = path or os.environ.get("LEADROUTER_FIRMOGRAPHICS_FILE")
        if not path:
            raise PluginDisabled("no company file: set LEADROUTER_FIRMOGRAPHICS_FILE to a CSV "
                                 "with a domain column")
        self.path = Path(path)
        self.clock = clock
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self.companies: dict[str, dict[str, Any]] = {}
        self._reload()  # a missing or broken file fails the plugin at start-up, visibly

    def _reload(self) -> None:
        st = self.path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self.companies = load_companies(self.path)
            self._stamp = stamp

    def _fresh(self) -> None:
        now = self.clock()
        if now - self._checked >= _CHECK_EVERY_S:
            self._checked = now
            # a broken or missing file keeps what was loaded; the next check tries again
            with contextlib.suppress(OSError, ValueError):
                self._reload()

    def lookup(self, domain: str | None) -> dict[str, Any] | None:
        """The company of ``domain`` or of its closest parent domain, or None."""
        if not domain:
            return None
        host = _host(domain)
        companies = self.companies
        while host:
            found = companies.get(host)
            if found is not None:
                return found
            host = host.partition(".")[2]
            if "." not in host:  # never match a bare TLD
                return None
        return None

    @hookimpl
    def enrich(self, lead: Lead) -> dict[str, Any] | None:
        self._fresh()
        domain = lead.domain
        if not domain and lead.email:
            domain = lead.email.rpartition("@")[2]
        found = self.lookup(domain)
        if found is None:
            return None
        return {k: v for k, v in found.items() if k in _FILLS and getattr(lead, k) is None}
