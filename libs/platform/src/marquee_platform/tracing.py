"""OpenTelemetry trace context carried over HTTP headers and Kafka message headers.

We use the W3C ``traceparent``/``tracestate`` propagator. Spans are exported over OTLP
when an endpoint is configured; otherwise they only carry ids through the system so logs
of one request line up across services.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, SpanKind

_configured = False


def configure_tracing(service: str, *, otlp_endpoint: str | None = None) -> None:
    """Install a tracer provider once per process (idempotent)."""
    global _configured
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": f"marquee-{service}"}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(provider)
    _configured = True


def tracer() -> trace.Tracer:
    return trace.get_tracer("marquee")


def current_trace_headers() -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) of the current span, for an outgoing message."""
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier


def kafka_headers(extra: Mapping[str, str] | None = None) -> list[tuple[str, bytes]]:
    headers = {**current_trace_headers(), **(extra or {})}
    return [(name, value.encode()) for name, value in headers.items()]


def headers_from_kafka(headers: Sequence[tuple[str, bytes]] | None) -> dict[str, str]:
    return {name: value.decode(errors="replace") for name, value in headers or ()}


@contextmanager
def span_from_headers(
    name: str, headers: Mapping[str, str], *, kind: SpanKind, attributes: dict[str, Any]
) -> Iterator[Span]:
    """Start a span whose parent is the trace context found in ``headers``."""
    parent = extract(dict(headers))
    token = otel_context.attach(parent)
    try:
        with tracer().start_as_current_span(name, kind=kind, attributes=attributes) as span:
            yield span
    finally:
        otel_context.detach(token)
