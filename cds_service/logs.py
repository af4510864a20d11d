"""Structured JSON logs: one object per line, never a token, never patient data beyond ids."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

import orjson

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged as a field.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                body[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            body["error"] = record.exc_info[0].__name__  # the type only: messages and tracebacks can hold data
        try:
            return orjson.dumps(body, default=str).decode()  # one line per request: the stdlib encoder cost more
        except orjson.JSONEncodeError:  # a lone surrogate or an integer over 64 bits in a field
            return json.dumps(body, default=str)


def configure(level: str) -> None:
    root = logging.getLogger("cds_service")
    if not any(getattr(h, "_cds_json", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._cds_json = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = True
