"""Decoding a request body: the value, or the problem that tells the sender what to fix.

Every handler that reads a JSON body goes through :func:`decode_body` (or :func:`decode_json`
for a msgspec type), so the answers are the same everywhere: 400 ``malformed-json`` for a body
that is not JSON, 422 ``validation`` naming the field path (``$.employees``) otherwise. Before
reading it, :func:`require_json` refuses another declared media type with a 415.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from litestar.datastructures import Headers
from litestar.plugins.problem_details import ProblemDetailsException

from router.api.errors import problem, validation_problem

__all__ = ["DECODE_ERRORS", "decode_body", "decode_json", "malformed", "require_json"]

T = TypeVar("T")

# What msgspec raises for bodies that are not JSON it can read: malformed JSON, invalid UTF-8
# inside a string (UnicodeDecodeError) and nesting deeper than the recursion limit.
DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def require_json(headers: Headers, *, hint: str = "", also: tuple[str, ...] = (),
                 refuse: Callable[[str], Exception] | None = None) -> None:
    """415 unless the body is declared JSON: ``Content-Type: application/json`` (parameters
    such as ``charset`` allowed), no content type, or one of ``also`` (e.g. ``text/plain``).
    ``hint`` is appended to the problem's detail; ``refuse(content_type)`` builds the
    exception to raise instead (the intake endpoints raise their own)."""
    ctype = headers.get("content-type", "")
    if ctype.split(";", 1)[0].strip().lower() in ("application/json", "", *also):
        return
    if refuse is not None:
        raise refuse(ctype)
    raise problem(415, "Unsupported media type",
                  f"send JSON with 'Content-Type: application/json' (got {ctype!r})"
                  + (f"; {hint}" if hint else ""))


def malformed(exc: Exception, *, hint: str = "", field: str | None = None
              ) -> ProblemDetailsException:
    """400 for a body that is not JSON. ``hint``: what to send instead; ``field``: name the
    offending place (``$``) in ``errors`` too, as the intake endpoints do."""
    detail = f"the body is not valid JSON: {exc}" + (f" — {hint}" if hint else "")
    if field is None:
        return problem(400, "Malformed JSON", detail, kind="malformed-json")
    return problem(400, "Malformed JSON", detail, kind="malformed-json",
                   errors=[{"path": field, "message": detail}], field=field)


def decode_body(body: bytes, decode: Callable[[bytes], T], *, title: str = "Invalid lead",
                prefix: str = "$", hint: str = "", field: str | None = None) -> T:
    """``decode(body)``, or the problem: 422 ``title`` with the field path under ``prefix``
    for a value of the wrong shape, 400 for a body that is not JSON (see :func:`malformed`)."""
    try:
        return decode(body)
    except msgspec.ValidationError as exc:
        raise validation_problem(exc, prefix=prefix, title=title) from None
    except DECODE_ERRORS as exc:
        raise malformed(exc, hint=hint, field=field) from None


_DECODERS: dict[Any, Callable[[bytes], Any]] = {}  # one Decoder per body type, made once


def _decoder(tp: Any) -> Callable[[bytes], Any]:
    decode = _DECODERS.get(tp)
    if decode is None:
        decode = _DECODERS[tp] = msgspec.json.Decoder(tp).decode
    return decode


def decode_json(body: bytes, tp: type[T], *, title: str = "Invalid lead", prefix: str = "$",
                hint: str = "") -> T:
    """The body as ``tp`` (a msgspec type), or the problem (see :func:`decode_body`)."""
    decode: Callable[[bytes], T] = _decoder(tp)
    return decode_body(body, decode, title=title, prefix=prefix, hint=hint)
