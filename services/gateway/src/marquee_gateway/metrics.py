"""The gateway's own Prometheus metrics (served at /metrics with the platform's)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

STREAMS_ACTIVE = Gauge(
    "marquee_gateway_streams_active", "Real-time (SSE) streams open in this process"
)
RATE_LIMITED = Counter(
    "marquee_gateway_rate_limited_total",
    "Requests refused with 429, by rate-limit class (auth, write, read)",
    ["rate_class"],
)
AUTH_REJECTIONS = Counter(
    "marquee_gateway_auth_rejections_total",
    "Requests refused at the edge because of their access token, by problem code",
    ["reason"],
)
REDIS_FAILURES = Counter(
    "marquee_gateway_redis_failures_total",
    "Edge checks that could not use Redis and let the request through (fail open)",
    ["check"],
)
STREAM_OVERFLOWS = Counter(
    "marquee_gateway_stream_overflows_total",
    "Streams closed because the client fell too far behind",
)
REALTIME_MESSAGES = Counter(
    "marquee_gateway_realtime_messages_total",
    "Real-time messages received from Redis for channels with open streams",
)
REALTIME_RECONNECTS = Counter(
    "marquee_gateway_realtime_reconnects_total",
    "Times the pub/sub connection to Redis was lost (its streams are closed to resume)",
)
UPSTREAM_OUTSTANDING = Gauge(
    "marquee_gateway_upstream_outstanding",
    "Requests a replica of a service is answering now, streamed bodies included until closed",
    ["service", "replica"],
)
UPSTREAM_EJECTIONS = Counter(
    "marquee_gateway_upstream_ejections_total",
    "Times a replica was left out of the rotation because a connection to it failed",
    ["service", "replica"],
)
UPSTREAM_RETRIES = Counter(
    "marquee_gateway_upstream_retries_total",
    "Requests sent again, by why: connect-failed (never sent), connection-lost (idempotent)",
    ["service", "reason"],
)
