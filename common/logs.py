"""JSON-lines logging to stdout, one object per line, for every process of the mesh.

A line written while a call is served carries its ``request_id``, and its ``trace_id`` and
``span_id`` when it has a trace (:mod:`common.tracing`).
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from common import times, tracing

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}
_service = ""


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object; ``extra=`` fields become top-level keys."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": times.to_rfc3339(times.seconds(record.created), digits=3),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
            **tracing.log_fields(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route the root logger to stdout as JSON lines; safe to call more than once."""
    global _service
    _service = service
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class AccessLog:
    """One INFO line per call, in the same JSON shape as every other log line.

    It skips the logging machinery (record, formatter, handler), which on a cheap call costs as
    much as the call itself; the line is written whole in one call, so lines never interleave.
    """

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def write(self, msg: str, now_ns: int, **fields: object) -> None:
        if not self._logger.isEnabledFor(logging.INFO):
            return
        entry = {
            "ts": times.to_rfc3339(now_ns, digits=3),
            "level": "INFO",
            "service": _service,
            "logger": self._logger.name,
            "msg": msg,
            **tracing.log_fields(),
            **fields,
        }
        sys.stdout.write(json.dumps(entry, default=str) + "\n")
