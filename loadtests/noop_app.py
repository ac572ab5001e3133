"""The framework's own ceiling: a litestar app whose POST /v1/leads only decodes the body into
the same ``Lead`` type the service uses and answers a small JSON object. ``bench_service.py``
runs it side by side with the real service so the result is a ratio, not a noisy absolute.

    uvicorn loadtests.noop_app:app --loop uvloop --http httptools
"""

from __future__ import annotations

from typing import Any

from leadrouter_sdk import decode_lead
from litestar import Litestar, Request, post


@post("/v1/leads", status_code=201)
async def create_lead(request: Request[Any, Any, Any]) -> dict[str, Any]:
    lead = decode_lead(await request.body())
    return {"ok": True, "email": lead.email is not None}


app = Litestar(route_handlers=[create_lead], debug=False)
