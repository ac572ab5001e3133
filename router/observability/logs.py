"""Structured JSON logs, one line per event, with personal data redacted.

Emails and phone numbers never reach a log line: every message and every extra value passes
through :func:`redact` (leads carry names too, which is why lead payloads are never logged).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, TextIO

import msgspec

__all__ = ["REQUEST", "JsonFormatter", "RequestContext", "access_line", "configure_logging",
           "quiet", "redact"]

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
# A phone number in free text: digits in groups (spaces, dots, dashes, parentheses), maybe a
# leading +, standing alone: not inside a word or an id (ld_0123..., key_...), a path, a version
# or a time. What it finds is then checked by _phone().
_PHONE = re.compile(r"(?<![\w+])(?<!\w[.\-/:])(?:\+|\( ?)?\d[\d ().\-]{5,24}\d"
                    r"(?!\w|[.\-/:]\w)")
_IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DIGITS = re.compile(r"\d+")
# Fields whose whole value is a phone number, in log extras and in logged mappings.
_PHONE_FIELD = re.compile(r"(?:^|_)(?:phone|mobile|cell|tel|telephone|fax|sms)(?:_|$)",
                          re.IGNORECASE)
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName",
                                                     "color_message"}


class RequestContext:
    """What the log lines of one HTTP request share; set by
    :mod:`router.observability.middleware`, filled in by handlers (the lead id and rules version
    of the lead they routed)."""

    __slots__ = ("fields", "lead_id", "request_id", "rules_version")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.lead_id: str | None = None
        self.rules_version: str | None = None
        self.fields: dict[str, Any] | None = None


REQUEST: ContextVar[RequestContext | None] = ContextVar("leadrouter_request", default=None)

# Values the service generates itself (ids, hashes, route templates): never personal data, and
# redacting them is expensive (the phone pattern backtracks on long hex strings: ~26 µs for a rules
# version). Request ids are checked once when they arrive (router/observability/middleware.py).
_TRUSTED = frozenset({"request_id", "lead_id", "rules_version", "version", "route", "method",
                      "status", "duration_ms"})


def _phone(m: re.Match[str]) -> str:
    """``[phone]`` for what dials like one: 7 to 15 digits (E.164), not an address like
    127.0.0.1 or a date, and no run of more than 12 digits unless written with ``+`` or a
    leading 0: ids the service makes (outbox event and erasure ids ``1796421678064-0``) and
    millisecond timestamps are runs of 13."""
    text = m.group()
    groups = _DIGITS.findall(text)
    digits = sum(map(len, groups))
    if not 7 <= digits <= 15 or _IPV4.fullmatch(text) or _DATE.fullmatch(text):
        return text
    if max(map(len, groups)) > 12 and not text.startswith(("+", "0")):
        return text
    return "[phone]"


def redact(value: Any, field: str = "") -> Any:
    """``value`` without email addresses and phone numbers; ``field``: the name it is logged
    under (a phone field is masked whole, whatever its format)."""
    if isinstance(value, str):
        if field and value and _PHONE_FIELD.search(field):
            return "[phone]"
        return _PHONE.sub(_phone, _EMAIL.sub("[email]", value))
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, field) for v in value]
    if field and isinstance(value, int | float) and _PHONE_FIELD.search(field):
        return "[phone]"
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "msg": redact(record.getMessage()),
        }
        request = REQUEST.get()
        if request is not None:
            entry["request_id"] = request.request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if key in _TRUSTED else redact(value, key)
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info))
        return msgspec.json.encode(entry, enc_hook=str).decode()


access_log = logging.getLogger("leadrouter.access")
_access_stream: TextIO | None = None
_encode_line = msgspec.json.Encoder(enc_hook=str).encode


def access_line(fields: dict[str, Any]) -> None:
    """The one line of an HTTP request (``leadrouter.access`` at info). With logging set up by
    :func:`configure_logging` it is encoded and written directly — the logging module's record,
    lock and formatter cost ~30 µs a line, a fifth of a routed lead's whole CPU budget; the
    output is the same JSON. ``fields`` must hold only trusted values (see ``_TRUSTED``)."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    stream = _access_stream
    if stream is None:
        access_log.info("request", extra=fields)
        return
    entry = {"ts": dt.datetime.now(dt.UTC).isoformat(), "level": "info",
             "logger": "leadrouter.access", "pid": os.getpid(), "msg": "request", **fields}
    stream.write(_encode_line(entry).decode() + "\n")


def configure_logging(level: str = "info") -> None:
    global _access_stream  # noqa: PLW0603 - set once per process, read on every request
    _access_stream = sys.stderr
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    # leadrouter.access (one line per HTTP request) is a child of "leadrouter".
    for name in ("leadrouter", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    # Libraries (httpx in the plugins, asyncio...) log through the root logger: their
    # warnings and errors as JSON lines too, their chatter (INFO per HTTP request) not at all.
    # Handlers others put there (pytest's capture) stay; ours replaces ours (called again).
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "leadrouter", False)]
    handler.leadrouter = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(max(logging.WARNING, logging.getLevelNamesMapping()[level.upper()]))


@contextlib.contextmanager
def quiet(name: str) -> Iterator[None]:
    """No log lines from logger ``name`` and its children while the block runs: for the checks
    ``leadrouter serve`` makes before starting the workers, which log the same lines again."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)
