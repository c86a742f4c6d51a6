"""JSON structured logs on stdout with the service, request id and trace id on every line."""

from __future__ import annotations

import logging
import sys
from typing import Any

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

from marquee_platform.context import current_request_id

_SECRET_KEYS = ("password", "secret", "token", "authorization", "cookie", "key")


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.request_id = current_request_id()
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            record.trace_id = format(span_context.trace_id, "032x")
            record.span_id = format(span_context.span_id, "016x")
        else:
            record.trace_id = None
            record.span_id = None
        return True


class _RedactingJsonFormatter(JsonFormatter):
    """Drops the value of any extra field whose name says it holds a secret."""

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        for name in list(log_data):
            if any(word in name.lower() for word in _SECRET_KEYS) and name != "request_id":
                log_data[name] = "[redacted]"
        return log_data


def configure_logging(service: str, *, level: str = "INFO", json: bool = True) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_ContextFilter(service))
    if json:
        handler.setFormatter(
            _RedactingJsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s "
                "%(service)s %(request_id)s %(trace_id)s %(span_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(service)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for server_logger in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn installs its own plain-text handlers; route its lines through ours.
        logging.getLogger(server_logger).handlers.clear()
        logging.getLogger(server_logger).propagate = True
    # httpx logs every request's full URL at INFO, query string included, and a query
    # string may carry a token (EventSource can't send headers): keep those lines out.
    for noisy in ("aiokafka", "kafka", "uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
