"""firmographics: CSV loading, lookups, enrichment through the SDK harness, reloads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from leadrouter_firmographics import Firmographics, load_companies
from leadrouter_sdk import PluginDisabled

CSV = """domain,Company,employees,industry,revenue,country
acme.com,Acme,"1,200",Software,$50M,Germany
https://www.bigretail.example/,Big Retail,50000,Retail,,US
tiny.example,Tiny,8,,,
"""


@pytest.fixture
def companies(tmp_path: Path) -> Path:
    path = tmp_path / "companies.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def test_load_and_lookup(companies: Path) -> None:
    plugin = Firmographics(companies)
    assert plugin.lookup("ACME.com") == {"company": "Acme", "employees": 1200,
                                         "industry": "Software", "annual_revenue": 50e6,
                                         "country": "DE"}
    assert plugin.lookup("eu.sales.acme.com") == plugin.lookup("acme.com")  # parent domain
    assert plugin.lookup("bigretail.example")["company"] == "Big Retail"  # type: ignore[index]
    assert plugin.lookup("other.com") is None
    assert plugin.lookup("com") is None and plugin.lookup(None) is None


def test_enrichment_fills_what_the_lead_lacks(leadrouter: Any, make_lead: Any,
                                              companies: Path) -> None:
    h = leadrouter(Firmographics(companies))
    result = h.evaluate(make_lead(email="jo@eu.acme.com", company="ACME GmbH", budget=60000))
    lead = result.lead
    assert (lead.employees, lead.industry, lead.annual_revenue) == (1200, "Software", 50e6)
    assert (lead.company, lead.country) == ("ACME GmbH", "DE")  # stated wins; normalised
    assert "fit.big" in result.matched  # the fit rule works without the lead stating it
    assert result.status == "mql"
    stated = h.enrich(make_lead(domain="acme.com", employees=3))
    assert stated.employees == 3


def test_nothing_known_nothing_filled(leadrouter: Any, make_lead: Any, companies: Path) -> None:
    result = leadrouter(Firmographics(companies)).evaluate(make_lead(email="a@unknown.example"))
    assert result.lead.employees is None and not result.plugin_steps()


def test_disabled_without_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEADROUTER_FIRMOGRAPHICS_FILE", raising=False)
    with pytest.raises(PluginDisabled, match="LEADROUTER_FIRMOGRAPHICS_FILE"):
        Firmographics()


def test_a_bad_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("name,employees\nAcme,10\n")
    with pytest.raises(ValueError, match="no `domain` column"):
        load_companies(path)
    path.write_text("domain,employees\n,10\n")
    with pytest.raises(ValueError, match=r"bad.csv:2: row without a domain"):
        load_companies(path)
    path.write_text("domain,employees\nacme.com,10\nbig.com,lots\n")
    with pytest.raises(ValueError, match=r"bad.csv:3: Expected a whole number"):
        load_companies(path)


def test_the_file_is_reread_when_it_changes(companies: Path) -> None:
    now = [0.0]
    plugin = Firmographics(companies, clock=lambda: now[0])
    assert plugin.lookup("new.example") is None
    companies.write_text(CSV + "new.example,New,12,,,\n", encoding="utf-8")
    now[0] += 10
    assert plugin.enrich(lead=_lead("x@new.example")) == {"company": "New", "employees": 12}


def _lead(email: str) -> Any:
    from leadrouter_sdk import Lead

    return Lead(email=email)
