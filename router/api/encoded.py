"""A litestar ``Response`` for the hot JSON endpoints that skips litestar's general-purpose
response assembly (a header multidict per response, ``setdefault`` on it for the content type
and length, cookie and background-task handling, then re-encoding the headers).

:class:`EncodedResponse` encodes its content with litestar's own serializer and hands back a
minimal ASGI callable that sends the same two messages, with the same headers in the same
order, as litestar's ``ASGIResponse`` would (``tests/api/test_encoded.py`` compares the
two).
Anything the fast path does not cover — cookies, background tasks, layered response headers,
type encoders, HEAD, a non-JSON media type or a status without a body — falls back to litestar.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from litestar import Response
from litestar.serialization import get_serializer

if TYPE_CHECKING:
    from litestar.background_tasks import BackgroundTask, BackgroundTasks
    from litestar.connection import Request
    from litestar.datastructures import Cookie
    from litestar.types import ASGIApp, Receive, Scope, Send, TypeEncodersMap

__all__ = ["EncodedResponse"]

T = TypeVar("T")

_JSON = "application/json"
_SERIALIZER = get_serializer(None)
_SET_HERE = ("content-type", "content-length")  # a response that sets them itself: litestar


class _Sent:
    """The ASGI app of one encoded response: start (status, headers), then the whole body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status,
                    "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


class EncodedResponse(Response[T]):
    """``Response(content, status_code=..., headers=...)`` with a JSON body, sent directly."""

    def to_asgi_response(  # type: ignore[override]
        self, app: Any, request: Request[Any, Any, Any], *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None, is_head_response: bool = False,
        media_type: str | None = None, status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> ASGIApp:
        status = self.status_code or status_code
        own = self.headers
        if (app is not None or background is not None or self.background is not None
                or cookies or self.cookies or encoded_headers is not None or headers
                or is_head_response or type_encoders or self.response_type_encoders
                or (self.media_type or media_type or _JSON) != _JSON
                or status is None or status < 200 or status in (204, 304)
                or isinstance(self.content, bytes | str)
                or any(k.lower() in _SET_HERE for k in own)):
            return super().to_asgi_response(
                app, request, background=background, cookies=cookies,
                encoded_headers=encoded_headers, headers=headers,
                is_head_response=is_head_response, media_type=media_type,
                status_code=status_code, type_encoders=type_encoders)
        body = self.render(self.content, _JSON, _SERIALIZER)  # litestar's own encoding
        out = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in own.items()]
        out += ((b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("latin-1")))
        return _Sent(status, out, body)
