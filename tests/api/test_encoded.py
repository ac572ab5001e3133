"""``EncodedResponse`` (router/api/encoded.py) sends exactly what litestar's ``Response`` sends:
the same ASGI messages, headers in the same order, the same body bytes; and it falls back to
litestar for whatever its fast path does not cover."""

from __future__ import annotations

import datetime as dt
from typing import Any

import anyio
import pytest
from leadrouter_sdk import Assignment, Decision, HistoryEntry, Score, Sla, Step
from litestar import Litestar, Request, Response, post
from litestar.background_tasks import BackgroundTask

from router.api.encoded import EncodedResponse

NOW = dt.datetime(2026, 11, 24, 12, 30, 0, 123000, tzinfo=dt.UTC)

DECISION = Decision(
    lead_id="ld_1", status="sql", score=Score(total=45.5, grade="B", fit=5.0, bant=40.5,
                                             engagement=0.0, contributions=()),
    territory="na-west", segment=None,
    assignment=Assignment(owner="alice", pool="p", queue=None, rule="r", strategy="round_robin",
                          reason="picked — by round robin"),
    sla=Sla(policy="sql", due_at=NOW, state="pending"), rules_version="v1", created_at=NOW,
    matched=("a", "b"), explanation=(Step(stage="grade", outcome="B", detail="ü"),),
    history=(HistoryEntry(at=NOW, event="created"),
             HistoryEntry(at=NOW, event="assigned", detail={"owner": "alice"})))

CASES: dict[str, Any] = {
    "created": {"status_code": 201, "headers": {"Location": "/v1/leads/ld_1"}},
    "duplicate": {"status_code": 200, "headers": {"Location": "/v1/leads/ld_1"}},
    "no headers": {"status_code": 201},
    "sets its content type": {"status_code": 201,
                              "headers": {"Content-Type": "application/vnd.x+json"}},
    "cookie": {"status_code": 201, "cookies": {"a": "b"}},
    "no content": {"status_code": 204},
    "text": {"status_code": 201, "media_type": "text/plain"},
}


def _app(cls: type[Response[Any]], case: dict[str, Any], content: Any) -> Litestar:
    @post("/x", status_code=201)
    async def handler(request: Request[Any, Any, Any]) -> Response[Any]:
        return cls(content, **case)

    return Litestar(route_handlers=[handler])


def _messages(app: Litestar) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/x", "raw_path": b"/x",
             "query_string": b"", "root_path": "", "headers": [(b"host", b"t")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2), "state": {}}
    anyio.run(app, scope, receive, send)  # type: ignore[arg-type]
    return sent


FAST = {"created", "duplicate", "no headers"}


class _Recording(EncodedResponse[Any]):
    built: list[str] = []

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> Any:
        app = super().to_asgi_response(*args, **kwargs)
        self.built.append(type(app).__name__)
        return app


@pytest.mark.parametrize("name", list(CASES))
def test_same_messages_as_litestar(name: str) -> None:
    case = CASES[name]
    content = None if case["status_code"] == 204 else \
        "plain text" if case.get("media_type") == "text/plain" else DECISION
    _Recording.built.clear()
    ours = _messages(_app(_Recording, case, content))
    theirs = _messages(_app(Response, case, content))
    assert ours == theirs
    assert ours[0]["type"] == "http.response.start"
    assert _Recording.built == ["_Sent" if name in FAST else "ASGIResponse"]


def test_fast_path_and_fallback() -> None:
    request: Any = None
    fast = EncodedResponse(DECISION, status_code=201, headers={"Location": "/v1/leads/ld_1"})
    app = fast.to_asgi_response(None, request, media_type="application/json", status_code=201,
                                headers={}, cookies=[])
    assert type(app).__name__ == "_Sent"
    slow = EncodedResponse(DECISION, status_code=201,
                           background=BackgroundTask(lambda: None))
    assert type(slow.to_asgi_response(None, request)).__name__ == "ASGIResponse"
