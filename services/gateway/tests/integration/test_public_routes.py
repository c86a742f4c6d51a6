"""Booking's public paths outside ``/api/v1/booking/`` (the routing table), through the
gateway over real HTTP to small real services that say who they are."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from marquee_gateway.main import create_app
from marquee_gateway.settings import GatewaySettings
from marquee_testing.fixtures import TokenIssuer, serve_in_thread

from .upstreams import ClosesReusedConnections

# booking's and events' public paths, as in their api.py (a service never imports another).
BOOKING_PATHS = [
    "/api/v1/orders",
    "/api/v1/orders/{order_id}",
    "/api/v1/orders/{order_id}/cancel",
    "/api/v1/orders/{order_id}/refunds",
    "/api/v1/users/me/orders",
    "/api/v1/users/me/tickets",
    "/api/v1/tickets/{ticket_id}",
    "/api/v1/tickets/{ticket_id}/qr",
    "/api/v1/tickets/{ticket_id}/transfer",
    "/api/v1/events/{event_id}/orders",
    "/api/v1/events/{event_id}/orders.csv",
    "/api/v1/events/{event_id}/sales-settings",
    "/api/v1/events/{event_id}/staff",
    "/api/v1/events/{event_id}/promo-codes",
    "/api/v1/events/{event_id}/promo-codes/{promo_code_id}",
    "/api/v1/events/{event_id}/checkins",
    "/api/v1/events/{event_id}/checkins/offline",
    "/api/v1/events/{event_id}/scanner-kit",
]
EVENTS_PATHS = [
    "/api/v1/events",
    "/api/v1/events/mine",
    "/api/v1/events/venues",
    "/api/v1/events/venues/{venue_id}",
    "/api/v1/events/{event_id}",
    "/api/v1/events/{event_id}/publish",
    "/api/v1/events/{event_id}/status",
    "/api/v1/events/{event_id}/ticket-types",
    "/api/v1/events/{event_id}/ticket-types/{ticket_type_id}",
    "/api/v1/events/{event_id}/reviews",
    "/api/v1/events/{event_id}/reviews/{review_id}/reply",
]
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

HITS: Counter[str] = Counter()
"""Requests each service received: what the gateway let through, and to whom."""


def echo_service(name: str, public_paths: Sequence[str]) -> FastAPI:
    """A service that describes ``public_paths`` in its OpenAPI document (plus a private
    one) and answers any request with who it is and what it received."""
    app = FastAPI(title=name, description=f"The {name} service")

    async def echo(request: Request) -> dict[str, Any]:
        HITS[name] += 1
        body = await request.body()
        return {
            "service": name,
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "body": body.decode(),
            "content_type": request.headers.get("content-type"),
            "request_id": request.headers.get("x-request-id"),
            "forwarded_for": request.headers.get("x-forwarded-for"),
        }

    for index, path in enumerate(public_paths):
        app.add_api_route(path, echo, methods=["GET"], name=f"{name}_read_{index}")
    app.add_api_route("/internal/stats", echo, methods=["GET"], name=f"{name}_stats")
    app.add_api_route("/{path:path}", echo, methods=ALL_METHODS, include_in_schema=False)
    return app


@pytest.fixture(scope="module")
def services() -> Iterator[dict[str, str]]:
    with (
        serve_in_thread(echo_service("booking", BOOKING_PATHS)) as booking,
        serve_in_thread(echo_service("events", EVENTS_PATHS)) as events,
    ):
        yield {"booking": booking, "events": events}


def gateway_settings(
    service_urls: dict[str, str], redis_url: str, token_issuer: TokenIssuer
) -> GatewaySettings:
    return GatewaySettings(
        service_urls=service_urls,
        jwks_url=token_issuer.jwks_url,
        redis_url=redis_url,
        # Each test poses as a client of its own behind our load balancer, so rate-limit
        # budgets (in a Redis other test runs may share) never mix.
        trusted_proxies=["127.0.0.0/8"],
        max_body_bytes=4096,
        upstream_timeout_seconds=2.0,
        log_json=False,
    )


@pytest.fixture(scope="module")
def gateway(services: dict[str, str], redis_url: str, token_issuer: TokenIssuer) -> Iterator[str]:
    settings = gateway_settings(services, redis_url, token_issuer)
    with serve_in_thread(create_app(settings)) as url:
        yield url


def client_for(gateway: str) -> httpx.AsyncClient:
    address = f"2001:db8:{uuid.uuid4().int % 65536:x}::1"
    return httpx.AsyncClient(base_url=gateway, headers={"X-Forwarded-For": address})


@pytest.fixture
async def client(gateway: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(gateway) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/orders"),
        ("GET", "/api/v1/orders/o-1"),
        ("POST", "/api/v1/orders/o-1/cancel"),
        ("POST", "/api/v1/orders/o-1/refunds"),
        ("GET", "/api/v1/users/me/orders"),
        ("GET", "/api/v1/users/me/tickets"),
        ("GET", "/api/v1/tickets/t-1"),
        ("GET", "/api/v1/tickets/t-1/qr"),
        ("POST", "/api/v1/tickets/t-1/transfer"),
        ("GET", "/api/v1/events/e-1/orders"),
        ("GET", "/api/v1/events/e-1/orders.csv"),
        ("GET", "/api/v1/events/e-1/sales-settings"),
        ("PUT", "/api/v1/events/e-1/sales-settings"),
        ("GET", "/api/v1/events/e-1/staff"),
        ("PUT", "/api/v1/events/e-1/staff"),
        ("GET", "/api/v1/events/e-1/promo-codes"),
        ("POST", "/api/v1/events/e-1/promo-codes"),
        ("PATCH", "/api/v1/events/e-1/promo-codes/p-1"),
        ("POST", "/api/v1/events/e-1/checkins"),
        ("POST", "/api/v1/events/e-1/checkins/offline"),
        ("GET", "/api/v1/events/e-1/scanner-kit"),
    ],
)
async def test_each_public_booking_path_reaches_booking(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 200, response.text
    echoed = response.json()
    assert (echoed["service"], echoed["method"], echoed["path"]) == ("booking", method, path)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/events"),
        ("POST", "/api/v1/events"),
        ("GET", "/api/v1/events/mine"),
        ("GET", "/api/v1/events/venues/v-1"),
        ("GET", "/api/v1/events/e-1"),
        ("PATCH", "/api/v1/events/e-1"),
        ("DELETE", "/api/v1/events/e-1"),
        ("POST", "/api/v1/events/e-1/publish"),
        ("POST", "/api/v1/events/e-1/status"),
        ("GET", "/api/v1/events/e-1/ticket-types"),
        ("PATCH", "/api/v1/events/e-1/ticket-types/tt-1"),
        ("GET", "/api/v1/events/e-1/reviews"),
        ("POST", "/api/v1/events/e-1/reviews/r-1/reply"),
        # Near booking's rules, but not theirs.
        ("GET", "/api/v1/events/orders"),
        ("GET", "/api/v1/events/e-1/orders-archive"),
        ("GET", "/api/v1/events/e-1/staffing"),
    ],
)
async def test_every_other_events_path_still_reaches_events(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 200, response.text
    echoed = response.json()
    assert (echoed["service"], echoed["method"], echoed["path"]) == ("events", method, path)


async def test_method_query_headers_and_body_pass_through(client: httpx.AsyncClient) -> None:
    scan = b'{"barcode": "MQ-1234", "gate": "north"}'
    response = await client.post(
        "/api/v1/events/e-1/checkins",
        params=[("device", "door-2"), ("tag", "a"), ("tag", "b")],
        content=scan,
        headers={"content-type": "application/json", "x-request-id": "req-door-2"},
    )
    patched = await client.patch(
        "/api/v1/events/e-1/promo-codes/p-1?active=false",
        json={"max_uses": 10},
    )
    head = await client.head("/api/v1/tickets/t-1/qr?format=png")
    assert response.status_code == 200
    echoed = response.json()
    assert echoed["service"] == "booking"
    assert echoed["method"] == "POST"
    assert echoed["query"] == "device=door-2&tag=a&tag=b"
    assert echoed["body"] == scan.decode()
    assert echoed["content_type"] == "application/json"
    assert echoed["request_id"] == "req-door-2"
    assert response.headers["x-request-id"] == "req-door-2"
    assert echoed["forwarded_for"].endswith(", 127.0.0.1")
    assert (patched.json()["method"], patched.json()["query"]) == ("PATCH", "active=false")
    assert patched.json()["body"] == '{"max_uses":10}'
    assert (head.status_code, head.content) == (200, b"")


async def test_the_edge_checks_booking_paths_like_any_other(
    client: httpx.AsyncClient, token_issuer: TokenIssuer
) -> None:
    before = HITS["booking"]
    signed_in = await client.get(
        "/api/v1/users/me/orders",
        headers={"Authorization": f"Bearer {token_issuer.token('fan-1')}"},
    )
    expired = await client.get(
        "/api/v1/users/me/orders",
        headers={"Authorization": f"Bearer {token_issuer.token('fan-1', lifetime_seconds=-120)}"},
    )
    too_large = await client.post("/api/v1/orders", content=b"x" * 5000)
    assert signed_in.status_code == 200
    assert signed_in.headers["ratelimit-policy"] == "300;w=60", "a signed-in read"
    assert expired.status_code == 401
    assert expired.headers["content-type"] == "application/problem+json"
    assert too_large.status_code == 413
    assert too_large.headers["ratelimit-policy"] == "60;w=60", "an anonymous write"
    assert HITS["booking"] == before + 1, "refusals never reach booking"


async def test_unknown_paths_still_get_the_gateways_404(client: httpx.AsyncClient) -> None:
    for path in ("/api/v1/nonexistent/x", "/api/v1/orders-archive", "/api/v1/users/me"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
        assert "there is no service called" in response.json()["detail"]


async def test_a_rule_for_a_service_not_configured_answers_like_that_service(
    services: dict[str, str], redis_url: str, token_issuer: TokenIssuer
) -> None:
    settings = gateway_settings({"events": services["events"]}, redis_url, token_issuer)
    with serve_in_thread(create_app(settings)) as gateway:
        async with client_for(gateway) as client:
            by_table = await client.get("/api/v1/events/e-1/checkins")
            by_prefix = await client.get("/api/v1/booking/anything")
            events = await client.get("/api/v1/events/e-1")
    assert by_table.status_code == by_prefix.status_code == 404
    assert by_table.headers["content-type"] == "application/problem+json"
    for field in ("type", "title", "detail"):
        assert by_table.json()[field] == by_prefix.json()[field]
    assert "'booking'" in by_table.json()["detail"]
    assert events.json()["service"] == "events"


async def test_a_booking_read_is_sent_again_when_its_pooled_connection_was_closed(
    redis_url: str, token_issuer: TokenIssuer
) -> None:
    flaky = ClosesReusedConnections()
    settings = gateway_settings({"booking": flaky.url}, redis_url, token_issuer)
    try:
        with serve_in_thread(create_app(settings)) as gateway:
            async with client_for(gateway) as client:
                reads = [await client.get("/api/v1/users/me/tickets") for _ in range(3)]
                put = await client.put("/api/v1/events/e-1/staff", content=b"door crew")
                post = await client.post("/api/v1/orders", content=b"an order")
    finally:
        flaky.close()
    assert [read.status_code for read in reads] == [200] * 3
    assert (put.status_code, put.json()) == (200, {"method": "PUT", "body": "door crew"})
    assert post.status_code == 502, "a POST is never sent twice"
    assert flaky.answered == Counter({"GET": 3, "PUT": 1})


async def test_the_merged_openapi_document_has_bookings_public_paths_and_events(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/orders" in paths
    assert "/api/v1/events/{event_id}" in paths
    assert "/api/v1/events/{event_id}/ticket-types" in paths
    gateway_paths = {"/api/v1/stream", "/healthz", "/readyz"}
    assert set(paths) == {*BOOKING_PATHS, *EVENTS_PATHS, *gateway_paths}
    for path in BOOKING_PATHS:
        assert paths[path]["get"]["tags"] == ["booking"], path
    for path in EVENTS_PATHS:
        assert paths[path]["get"]["tags"] == ["events"], path
    operation_ids = [
        operation["operationId"] for item in paths.values() for operation in item.values()
    ]
    assert len(operation_ids) == len(set(operation_ids))
