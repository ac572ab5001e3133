"""Decoding a request body: the value, or the problem that tells the sender what to fix.

Every handler that reads a JSON body goes through :func:`decode_body` (or :func:`decode_json`
for a msgspec type), so the answers are the same everywhere: 400 ``malformed-json`` for a body
that is not JSON, 422 ``validation`` naming the field path (``$.employees``) otherwise. Before
reading it, :func:`require_json` refuses another declared media type with a 415.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from litestar.datastructures import Headers
from litestar.plugins.problem_details import ProblemDetailsException

from router.api.errors import problem, validation_problem

__all__ = ["DECODE_ERRORS", "decode_body", "decode_json", "malformed", "require_json",
           "why_not_json"]

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


def malformed(exc: Exception | str, *, hint: str = "", field: str | None = None
              ) -> ProblemDetailsException:
    """400 for a body that is not JSON. ``exc``: what is wrong (see :func:`why_not_json`);
    ``hint``: what to send instead; ``field``: name the offending place (``$``) in ``errors``
    too, as the intake endpoints do."""
    detail = f"the body is not valid JSON: {exc}" + (f" — {hint}" if hint else "")
    if field is None:
        return problem(400, "Malformed JSON", detail, kind="malformed-json")
    return problem(400, "Malformed JSON", detail, kind="malformed-json",
                   errors=[{"path": field, "message": detail}], field=field)


# An escape and what follows it: a backslash always starts one, so `\\u` is no \u escape.
_ESCAPE = re.compile(rb"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)


def _lone_surrogate(body: bytes) -> tuple[int, str] | None:
    """Byte offset and text of the first \\uD800-\\uDFFF escape that is not half of a pair."""
    high: re.Match[bytes] | None = None
    for m in _ESCAPE.finditer(body):
        code = int(m.group(1), 16) if m.group(1) else -1
        if high is not None:
            if 0xDC00 <= code <= 0xDFFF and m.start() == high.end():
                high = None
                continue
            break
        if 0xD800 <= code <= 0xDBFF:
            high = m
        elif 0xDC00 <= code <= 0xDFFF:
            return m.start(), m.group().decode()
    return (high.start(), high.group().decode()) if high is not None else None


def why_not_json(exc: Exception, body: bytes) -> Exception | str:
    """What is wrong with ``body``, for the sender: msgspec reports a lone UTF-16 surrogate
    escape (``"\\ud800"``) as "Input data was truncated", which sends people looking for a cut
    body."""
    lone = _lone_surrogate(body) if isinstance(exc, msgspec.DecodeError) else None
    byte = re.search(r"\(byte (\d+)\)", str(exc))
    if lone is None or (byte is not None and lone[0] > int(byte.group(1))):
        return exc  # none, or after the place msgspec found wrong
    at, text = lone
    return (f"a lone UTF-16 surrogate escape {text} at byte {at} (half of a pair, not a "
            "character); send the character as UTF-8 or as both halves of its pair, e.g. "
            "\\ud83d\\ude00, or remove it")


def decode_body(body: bytes, decode: Callable[[bytes], T], *, title: str = "Invalid lead",
                prefix: str = "$", hint: str = "", field: str | None = None,
                tp: Any = None) -> T:
    """``decode(body)``, or the problem: 422 ``title`` with the field path under ``prefix``
    for a value of the wrong shape (an unknown field of ``tp``, the type decoded, gets a
    "did you mean"), 400 for a body that is not JSON (see :func:`malformed`)."""
    try:
        return decode(body)
    except msgspec.ValidationError as exc:
        raise validation_problem(exc, prefix=prefix, title=title, tp=tp) from None
    except DECODE_ERRORS as exc:
        raise malformed(why_not_json(exc, body), hint=hint, field=field) from None


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
    return decode_body(body, decode, title=title, prefix=prefix, hint=hint, tp=tp)
