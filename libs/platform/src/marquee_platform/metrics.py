"""Prometheus metrics: rate, errors and duration per route, and ``/metrics``.

Labels use the route template (``/api/v1/orders/{order_id}``), never the raw path, so the
number of series stays bounded.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTTP_REQUESTS = Counter(
    "marquee_http_requests_total",
    "HTTP requests handled, by route and status class",
    ["service", "method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "marquee_http_request_duration_seconds",
    "Time to produce the response, by route",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HTTP_IN_FLIGHT = Gauge("marquee_http_requests_in_flight", "Requests being handled now", ["service"])
CONSUMER_LAG = Gauge(
    "marquee_consumer_lag_messages",
    "Messages between the group's position and the partition's end",
    ["group", "topic", "partition"],
)
ASSIGNED_PARTITIONS = Gauge(
    "marquee_consumer_assigned_partitions",
    "Partitions the group has given this replica",
    ["group"],
)
REBALANCES = Counter(
    "marquee_consumer_rebalances_total",
    "Partition assignments this replica received (one per group rebalance)",
    ["group"],
)
CONSUMED = Counter(
    "marquee_consumer_messages_total",
    "Messages handled by consumers, by outcome (applied, duplicate, dead-lettered)",
    ["group", "topic", "outcome"],
)
RELAYED = Counter(
    "marquee_relay_messages_total", "Outbox rows delivered to the broker", ["database", "mode"]
)

_UNMATCHED = "<unmatched>"


def _route_template(scope: Scope) -> str:
    """The matched route's template; the router leaves the route in the scope."""
    route = scope.get("route")
    return str(getattr(route, "path", _UNMATCHED)) if route is not None else _UNMATCHED


class PrometheusMiddleware:
    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        status_code = 500
        started = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        in_flight = HTTP_IN_FLIGHT.labels(self.service)
        in_flight.inc()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            in_flight.dec()
            route = _route_template(scope)
            method = scope["method"]
            HTTP_REQUESTS.labels(self.service, method, route, f"{status_code // 100}xx").inc()
            HTTP_DURATION.labels(self.service, method, route).observe(time.perf_counter() - started)


def metrics_router() -> APIRouter:
    metrics = APIRouter(tags=["health"])

    @metrics.get("/metrics", summary="Prometheus metrics (scraped from the private network)")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return metrics


def serve_metrics(port: int | None, *, address: str = "127.0.0.1") -> None:
    """Expose ``/metrics`` from a worker without an HTTP app (relay, consumers).

    prometheus-client serves it from a daemon thread that ends with the process.
    """
    if port is None:
        return
    from prometheus_client import start_http_server

    start_http_server(port, addr=address)
