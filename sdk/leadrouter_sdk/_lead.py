"""The one ``Lead`` type shared by the engine, the HTTP API and plugins.

Flat on purpose: rule authors write ``employees >= 1000`` or ``country == "US"``, not paths into
nested objects, and the engine reads fields without walking a tree. Free-form data goes into
``attributes`` and is reachable from rules as ``attributes.<name>``.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = ["AttributeValue", "Lead"]

AttributeValue = str | int | float | bool | None

Str = Annotated[str, msgspec.Meta(max_length=256)]
LongStr = Annotated[str, msgspec.Meta(max_length=4000)]
NonNegInt = Annotated[int, msgspec.Meta(ge=0)]
NonNegFloat = Annotated[float, msgspec.Meta(ge=0)]


class Lead(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """A person who showed interest, as sent by a form or a marketing tool."""

    # contact
    email: Str | None = None
    first_name: Str | None = None
    last_name: Str | None = None
    title: Str | None = None
    phone: Str | None = None
    # company
    company: Str | None = None
    domain: Str | None = None
    employees: NonNegInt | None = None
    annual_revenue: NonNegFloat | None = None
    industry: Str | None = None
    # location: ISO 3166-1 alpha-2 country, ISO 3166-2 subdivision suffix (``CA`` for US-CA)
    country: Str | None = None
    state: Str | None = None
    city: Str | None = None
    postal_code: Str | None = None
    # BANT
    budget: NonNegFloat | None = None
    authority: Str | None = None
    need: LongStr | None = None
    timeline_days: NonNegInt | None = None
    # source / campaign / UTM
    source: Str | None = None
    campaign: Str | None = None
    utm_source: Str | None = None
    utm_medium: Str | None = None
    utm_campaign: Str | None = None
    utm_term: Str | None = None
    utm_content: Str | None = None
    # consent
    consent: bool | None = None
    # identity at the sender, used for de-duplication
    external_id: Str | None = None
    description: LongStr | None = None
    attributes: dict[Str, AttributeValue] = msgspec.field(default_factory=dict)
