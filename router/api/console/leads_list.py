"""``/ui/leads``: the leads, newest first, with the filters of ``GET /v1/leads`` as a GET form
(the URL is the bookmark) and "next page" by cursor (``limit``: rows a page, 1..200, 50 by
default). Without JavaScript the form and the links
load whole pages; with htmx the table alone is swapped in place (``HX-Request``: the
``_leads_table.html`` fragment) and the URL follows. Same service as the API: ListService.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from litestar import get
from litestar.di import NamedDependency
from litestar.response import Template

from router.api.console._session import Req, Viewer, page
from router.services.lists import ListService
from router.services.lists_model import BadCursor, BadFilter, LeadFilter

__all__ = ["FILTERS", "handlers", "parse_time"]

FILTERS = ("status", "queue", "owner", "pool", "territory", "segment", "grade", "sla_state",
           "since", "until", "q")
_PAGE, _MAX = 50, 200


def parse_time(raw: str) -> dt.datetime:
    """A ``datetime-local`` value (taken as UTC) or an ISO time with its zone."""
    when = dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _choices(lists: ListService) -> dict[str, Any]:
    ruleset = lists.rules.current
    allowed = lists.allowed()
    return {"status": allowed.get("status", ()), "grade": allowed.get("grade", ()),
            "sla_state": allowed.get("sla_state", ()), "pool": sorted(ruleset.pools),
            "owner": sorted(ruleset.reps),
            "territory": [r.id for r in ruleset.territories.rules],
            "segment": [r.id for r in ruleset.segments.rules]}


@get("/leads", include_in_schema=False)
async def leads_list(request: Req, viewer: Viewer,
                     lists: NamedDependency[ListService]) -> Template:
    params = request.query_params
    given = {k: v.strip() for k in FILTERS if (v := params.get(k)) and v.strip()}
    cursor = params.get("cursor") or None
    raw_limit = params.get("limit", "")
    limit = int(raw_limit) if raw_limit.isdigit() and 1 <= int(raw_limit) <= _MAX else _PAGE
    if limit != _PAGE:
        given["limit"] = str(limit)
    error, status_code, rows, next_url, scanned = "", 200, [], "", 0
    try:
        where = LeadFilter(**{k: v for k, v in given.items()
                              if k not in ("since", "until", "limit")},
                           since=parse_time(given["since"]) if "since" in given else None,
                           until=parse_time(given["until"]) if "until" in given else None)
    except ValueError:
        where, error, status_code = None, "since/until: give a date and time, e.g. " \
            "2026-12-01T09:00 (UTC)", 422
    if where is not None:
        try:
            found = await lists.leads(where, limit=limit, cursor=cursor)
        except BadFilter as exc:
            error, status_code = f"{exc} — pick one of the listed values", 422
        except BadCursor as exc:
            error, status_code = f"{exc} (the page link is stale: start from the first page)", 400
        else:
            rows, scanned = found.items, found.scanned
            if found.next_cursor:
                next_url = "/ui/leads?" + urlencode({**given, "cursor": found.next_cursor})
    template = "console/_leads_table.html" if request.headers.get("hx-request") \
        and request.headers.get("hx-target") == "leads-table" else "console/leads.html"
    return page(request, viewer, template, "leads", status_code=status_code, rows=rows,
                given=given, choices=_choices(lists), next_url=next_url, error=error,
                first=cursor is None, scanned=scanned,
                first_url="/ui/leads?" + urlencode(given) if given else "/ui/leads")


handlers = [leads_list]
