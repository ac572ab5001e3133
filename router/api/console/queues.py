"""``/ui/queues``: every queue with its size and its oldest lead's age; ``/ui/queues/{queue}``:
what waits there, oldest first, with each lead's age, "next page" by cursor. Admins take a
lead for a rep from here: that is the owner action ``accept`` on a queued lead (the rep who
accepts it owns it), posted to the lead page's action route. Same service as
``GET /v1/queues``: ListService.
"""

from __future__ import annotations

from urllib.parse import quote

from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template

from router.api.console._format import duration
from router.api.console._session import Req, Viewer, page
from router.services.lists import ListService
from router.services.lists_model import BadCursor

__all__ = ["handlers"]

_PAGE = 50


@get("/queues", include_in_schema=False)
async def queues_page(request: Req, viewer: Viewer,
                      lists: NamedDependency[ListService]) -> Template:
    return page(request, viewer, "console/queues.html", "queues",
                queues=await lists.queues(), duration=duration)


@get("/queues/{queue:str}", include_in_schema=False)
async def queue_page(request: Req, viewer: Viewer, queue: FromPath[str],
                     lists: NamedDependency[ListService]) -> Template:
    cursor = request.query_params.get("cursor") or None
    if len(queue) > 200:
        return page(request, viewer, "console/queue.html", "queues", status_code=404,
                    queue=queue[:200], found=None, error="no such queue", duration=duration)
    try:
        found = await lists.queue(queue, limit=_PAGE, cursor=cursor)
    except BadCursor as exc:
        return page(request, viewer, "console/queue.html", "queues", status_code=400,
                    queue=queue, found=None, duration=duration,
                    error=f"{exc} (the page link is stale: start from the first page)")
    next_url = f"/ui/queues/{quote(queue, safe='')}?cursor={quote(found.next_cursor)}" \
        if found.next_cursor else ""
    return page(request, viewer, "console/queue.html", "queues", queue=queue, found=found,
                next_url=next_url, first=cursor is None, error="", duration=duration,
                reps=sorted(lists.rules.current.reps))


handlers = [queues_page, queue_page]
