"""How a route's error responses get into the OpenAPI document (router/api/openapi.py): a new
endpoint gets the ones its shape implies without declaring anything, and declares the rest
with ``responses=problems(...)``. Schema generation only — no I/O to test here."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, FromQuery

from router.api.openapi import declare_problems, json_body, problems


class _Thing(msgspec.Struct):
    name: str


async def _guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    return None


@post("/things/{thing_id:str}", guards=[_guard], operation_class=json_body(_Thing),
      responses=problems(409))
async def _replace(thing_id: FromPath[str], store: NamedDependency[str]) -> dict[str, str]:
    return {"id": thing_id, "store": store}


@get("/things")
async def _search(q: FromQuery[str], limits: NamedDependency[str]) -> list[str]:
    return [q, limits]


@get("/plain")
async def _plain() -> dict[str, str]:
    return {}


def _responses(app: Litestar, path: str, method: str) -> dict[str, Any]:
    doc = app.openapi_schema.to_schema()
    responses: dict[str, Any] = doc["paths"][path][method]["responses"]
    return responses


def test_a_new_route_gets_its_problem_responses_from_its_shape() -> None:
    deps = {"store": Provide(lambda: "s", sync_to_thread=False),
            "limits": Provide(lambda: "l", sync_to_thread=False)}
    app = Litestar([_replace, _search, _plain], dependencies=deps)
    declare_problems(app, store_backed={"store"})
    replace = _responses(app, "/things/{thing_id}", "post")
    # body: 400 413 422; path parameter: 404; guard: 401 403 503; declared: 409
    assert set(replace) == {"201", "400", "401", "403", "404", "409", "413", "422", "503"}
    for status in set(replace) - {"201"}:
        content = replace[status]["content"]
        assert list(content) == ["application/problem+json"], (status, content)
    # a query parameter only (400); `limits` does not need the store, so no 503
    assert set(_responses(app, "/things", "get")) == {"200", "400"}
    assert set(_responses(app, "/plain", "get")) == {"200"}
