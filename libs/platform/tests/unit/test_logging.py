from __future__ import annotations

import json
import logging

import pytest

from marquee_platform.context import request_id_var
from marquee_platform.logging import configure_logging
from marquee_platform.tracing import configure_tracing, tracer


def test_json_lines_carry_service_request_and_trace_ids(capsys: pytest.CaptureFixture[str]) -> None:
    configure_tracing("tests")
    configure_logging("booking", level="INFO", json=True)
    token = request_id_var.set("req-123")
    try:
        with tracer().start_as_current_span("work") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            logging.getLogger("marquee.test").info(
                "order placed", extra={"order_id": "o-1", "card_token": "tok_secret"}
            )
    finally:
        request_id_var.reset(token)
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["message"] == "order placed"
    assert line["service"] == "booking"
    assert line["request_id"] == "req-123"
    assert line["trace_id"] == trace_id
    assert line["order_id"] == "o-1"
    assert line["card_token"] == "[redacted]", "secrets never reach the logs"


def test_request_urls_with_query_strings_stay_out_of_the_logs() -> None:
    configure_logging("gateway", level="INFO", json=True)
    # httpx would log "GET http://…/stream?access_token=…" at INFO.
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING
