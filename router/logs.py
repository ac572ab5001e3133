"""Structured JSON logs, one line per event, with personal data redacted.

Emails and phone numbers never reach a log line: every message and every extra value passes
through :func:`redact` (leads carry names too, which is why lead payloads are never logged).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import sys
from typing import Any

import msgspec

__all__ = ["JsonFormatter", "configure_logging", "redact"]

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w.])\+?\d[\d\s().\-]{7,}\d(?![\w.])")
_IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName",
                                                     "color_message"}


def _phone(m: re.Match[str]) -> str:
    # Addresses like 127.0.0.1 look like dotted phone numbers; they are not personal data.
    return m.group() if _IPV4.fullmatch(m.group()) else "[phone]"


def redact(value: Any) -> Any:
    if isinstance(value, str):
        return _PHONE.sub(_phone, _EMAIL.sub("[email]", value))
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = redact(value)
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info))
        return msgspec.json.encode(entry, enc_hook=str).decode()


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("leadrouter", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
