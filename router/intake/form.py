"""HTML form posts: body parsing, Web-to-Lead names, spam checks, safe redirects.

Browsers send ``application/x-www-form-urlencoded`` (the default) or ``multipart/form-data``
(``enctype="multipart/form-data"``). Field names follow Salesforce Web-to-Lead (``first_name``,
``last_name``, ``email``, ``company``, ``retURL``, ...) so an existing form only needs its
``action`` changed; custom field ids (``00N...``) are mapped in ``rules/intake.yaml``.
"""

from __future__ import annotations

import datetime as dt
import math
import urllib.parse
from typing import Any, Final

import multipart  # type: ignore[import-untyped]
from leadrouter_sdk import Lead

from router.intake.config import FormConfig
from router.intake.mapping import IntakeError, Limits, build_lead

__all__ = ["WEB_TO_LEAD", "FormPost", "parse_form", "read_form", "redirect_for", "spam_reason"]

# Salesforce Web-to-Lead field names → lead fields (lead field names also map to themselves).
WEB_TO_LEAD: Final = {
    "first_name": "first_name", "last_name": "last_name", "email": "email",
    "company": "company", "title": "title", "phone": "phone", "mobile": "attributes.mobile",
    "fax": "ignore", "url": "domain", "website": "domain", "street": "attributes.street",
    "city": "city", "state": "state", "state_code": "state", "zip": "postal_code",
    "country": "country", "country_code": "country", "lead_source": "source",
    "description": "description", "industry": "industry", "employees": "employees",
    "revenue": "annual_revenue", "rating": "attributes.rating",
    "salutation": "attributes.salutation", "campaign_id": "campaign",
    "emailoptout": "attributes.email_opt_out", "member_status": "ignore",
    "oid": "ignore", "orgid": "ignore", "debug": "ignore", "debugemail": "ignore",
    "recordtype": "ignore", "encoding": "ignore", "submit": "ignore",
}
# Never lead data: the redirect, our own control fields.
CONTROL_FIELDS: Final = frozenset({"retURL", "returl", "lr_format"})


class FormPost:
    """A parsed submission: the lead, why it looks like spam (or None), where to send the
    browser afterwards."""

    __slots__ = ("lead", "redirect", "spam")

    def __init__(self, lead: Lead, spam: str | None, redirect: str) -> None:
        self.lead = lead
        self.spam = spam
        self.redirect = redirect


def _urlencoded(body: bytes, limits: Limits) -> list[tuple[str, str]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("latin-1")  # a page served as ISO-8859-1; never refuse a lead
    try:
        return urllib.parse.parse_qsl(text, keep_blank_values=True,
                                      max_num_fields=limits.max_fields + len(CONTROL_FIELDS),
                                      errors="replace")
    except ValueError:
        raise IntakeError(413, "Too many fields", f"more than {limits.max_fields} form fields "
                          "in one post", field="$", kind="too-many-fields") from None


def _multipart(body: bytes, boundary: str, limits: Limits) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    try:
        with multipart.PushMultipartParser(
                boundary, content_length=len(body), max_header_count=8,
                max_segment_size=limits.max_value_chars * 4 + 64,
                max_segment_count=limits.max_fields + len(CONTROL_FIELDS)) as parser:
            segment: Any = None
            data = bytearray()
            for part in parser.parse(body):
                if isinstance(part, multipart.MultipartSegment):
                    segment, data = part, bytearray()
                    if segment.filename is not None:
                        raise IntakeError(415, "File uploads not accepted",
                                          f"`{segment.name}` is a file; lead forms take text "
                                          "fields only", field=segment.name,
                                          kind="file-upload")
                elif part:
                    data.extend(part)
                elif segment is not None:
                    out.append((segment.name, data.decode(segment.charset or "utf-8",
                                                          errors="replace")))
                    segment = None
            for part in parser.parse(b""):  # end of input: raises on a truncated body
                del part
            if not parser.closed:
                raise multipart.ParserError("truncated multipart body")
    except multipart.ParserLimitReached:
        raise IntakeError(413, "Form too large", f"more than {limits.max_fields} fields or a "
                          f"field longer than {limits.max_value_chars} characters",
                          field="$", kind="form-too-large") from None
    except (multipart.ParserError, ValueError) as exc:
        raise IntakeError(400, "Malformed form", f"the multipart/form-data body does not "
                          f"parse: {exc}", field="$", kind="malformed-form") from None
    return out


def parse_form(body: bytes, content_type: str, limits: Limits) -> list[tuple[str, str]]:
    """The ``(name, value)`` pairs of a form body, in order (repeated names kept)."""
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    if media == "application/x-www-form-urlencoded":
        return _urlencoded(body, limits)
    if media == "multipart/form-data":
        boundary = ""
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.lower() == "boundary":
                boundary = value.strip().strip('"')
        if not boundary or len(boundary) > 200:
            raise IntakeError(400, "Malformed form", "multipart/form-data without a boundary",
                              field="$", kind="malformed-form")
        return _multipart(body, boundary, limits)
    raise IntakeError(415, "Unsupported media type",
                      f"forms post application/x-www-form-urlencoded or multipart/form-data "
                      f"(got {content_type[:100]!r}); JSON goes to /v1/leads",
                      field="$", kind="unsupported-media-type")


def redirect_for(form: FormConfig, ret_url: str | None) -> str:
    """``retURL`` if it is an absolute http(s) URL on an allow-listed host, else the form's
    thank-you page: never an open redirect."""
    if not ret_url:
        return form.thank_you
    url = ret_url.strip()
    if len(url) > 2000 or any(c in url for c in "\\\r\n\t\x00 ") or not url.isprintable():
        return form.thank_you
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises for a bad port
    except ValueError:
        return form.thank_you
    if parts.scheme not in ("https", "http") or not host or parts.username or parts.password:
        return form.thank_you
    if parts.scheme == "http" and host not in ("localhost", "127.0.0.1", "::1"):
        return form.thank_you
    return url if host.rstrip(".") in form.redirect_hosts else form.thank_you


def spam_reason(form: FormConfig, pairs: dict[str, str], now: dt.datetime) -> str | None:
    """Why this submission looks automated, or None: a filled honeypot, a too-fast fill."""
    if form.honeypot and pairs.get(form.honeypot, "").strip():
        return f"spam: the hidden honeypot field `{form.honeypot}` was filled"
    if form.min_fill_seconds:
        raw = pairs.get(form.fill_time_field, "").strip()
        try:
            started = float(raw)
        except ValueError:
            return (f"spam: no page-load time in `{form.fill_time_field}` (the form needs the "
                    "snippet that sets it, see docs/intake.md)")
        if not math.isfinite(started):
            return f"spam: `{form.fill_time_field}` is not a time"
        if started > 1e11:  # JavaScript's Date.now(): milliseconds
            started /= 1000
        elapsed = now.timestamp() - started
        if elapsed < form.min_fill_seconds:
            return (f"spam: submitted {max(elapsed, 0):.1f}s after the page loaded "
                    f"(minimum {form.min_fill_seconds:g}s)")
    return None


def read_form(form: FormConfig, pairs: list[tuple[str, str]], now: dt.datetime,
              limits: Limits) -> FormPost:
    """The lead of a parsed submission, its spam verdict and its redirect."""
    last: dict[str, str] = {}
    for name, value in pairs:
        last[name] = value
    ret = last.get("retURL") or last.get("returl")
    skip = set(CONTROL_FIELDS)
    if form.honeypot:
        skip.add(form.honeypot)
    if form.min_fill_seconds:
        skip.add(form.fill_time_field)
    grouped: dict[str, Any] = {}
    for name, value in pairs:  # repeated names (checkbox groups) become one joined value
        if name in grouped:
            prev = grouped[name]
            grouped[name] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            grouped[name] = value
    lead = build_lead(grouped.items(), mapping=form.fields, builtin=WEB_TO_LEAD,
                      defaults={"source": form.source, **form.defaults},
                      unmapped=form.unmapped, limits=limits, what="form field", ignore=skip)
    return FormPost(lead, spam_reason(form, last, now), redirect_for(form, ret))
