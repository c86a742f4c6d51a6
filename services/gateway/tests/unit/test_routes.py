"""The routing table: which service each public path goes to (pure, milliseconds)."""

from __future__ import annotations

from typing import Any

import pytest

from marquee_gateway.api_docs import merge_openapi
from marquee_gateway.routes import DEFAULT_ROUTING, Route, RouteRule, RoutingTable

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
"""booking's public paths as its OpenAPI document spells them."""

EVENTS_PATHS = [
    "/api/v1/events",
    "/api/v1/events/mine",
    "/api/v1/events/snapshots",
    "/api/v1/events/venues",
    "/api/v1/events/venues/mine",
    "/api/v1/events/venues/{venue_id}",
    "/api/v1/events/{event_id}",
    "/api/v1/events/{event_id}/publish",
    "/api/v1/events/{event_id}/cancel",
    "/api/v1/events/{event_id}/status",
    "/api/v1/events/{event_id}/ticket-types",
    "/api/v1/events/{event_id}/ticket-types/{ticket_type_id}",
    "/api/v1/events/{event_id}/reviews",
    "/api/v1/events/{event_id}/reviews/{review_id}/reply",
]
"""events' public paths as its OpenAPI document spells them."""


@pytest.mark.parametrize("path", BOOKING_PATHS)
def test_booking_paths_outside_its_prefix_go_to_booking(path: str) -> None:
    assert DEFAULT_ROUTING.resolve(path) == Route("booking", path)


@pytest.mark.parametrize("path", EVENTS_PATHS)
def test_every_other_events_path_stays_with_events(path: str) -> None:
    assert DEFAULT_ROUTING.service_for(path) == "events"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # A rule covers whole segments and what is below them, nothing longer.
        ("/api/v1/orders/", Route("booking", "/api/v1/orders/")),
        ("/api/v1/orders/7/tickets", Route("booking", "/api/v1/orders/7/tickets")),
        ("/api/v1/orders-archive/7", Route("orders-archive", "/api/v1/orders-archive/7")),
        ("/api/v1/users/me", Route("users", "/api/v1/users/me")),
        ("/api/v1/users/me/orders-old", Route("users", "/api/v1/users/me/orders-old")),
        ("/api/v1/users/42/orders", Route("users", "/api/v1/users/42/orders")),
        ("/api/v1/events/7/orders.csv", Route("booking", "/api/v1/events/7/orders.csv")),
        ("/api/v1/events/7/orders-csv", Route("events", "/api/v1/events/7/orders-csv")),
        ("/api/v1/events/7/ordersXcsv", Route("events", "/api/v1/events/7/ordersXcsv")),
        ("/api/v1/events/7/staffing", Route("events", "/api/v1/events/7/staffing")),
        ("/api/v1/events/orders", Route("events", "/api/v1/events/orders")),
        ("/api/v1/events//orders", Route("events", "/api/v1/events//orders")),
        ("/api/v1/events/7/reviews/orders", Route("events", "/api/v1/events/7/reviews/orders")),
        ("/api/v1/events/7/checkins\n", Route("events", "/api/v1/events/7/checkins\n")),
        # The default rule, exactly as before the table.
        ("/api/v1/events", Route("events", "/api/v1/events")),
        ("/api/v1/events/", Route("events", "/api/v1/events")),
        ("/api/v1/echo/a//b/", Route("echo", "/api/v1/echo/a//b/")),
        ("/api/v1/", None),
        ("/api/v1", None),
        ("/healthz", None),
        ("/api/v2/orders", None),
    ],
)
def test_paths_near_the_rules(path: str, expected: Route | None) -> None:
    assert DEFAULT_ROUTING.resolve(path) == expected


def test_the_first_matching_rule_wins() -> None:
    table = RoutingTable(
        [
            RouteRule("/api/v1/things/{id}/(special|other)", "special"),
            RouteRule("/api/v1/things", "things"),
        ]
    )
    assert table.service_for("/api/v1/things/1/special/x") == "special"
    assert table.service_for("/api/v1/things/1/plain") == "things"
    assert RoutingTable([]).service_for("/api/v1/things/1/special") == "things"


@pytest.mark.parametrize(
    "template",
    ["/orders", "/api/v1/orders/{id", "/api/v1/orders/x{id}", "/api/v1/(a|)", "/api/v1/a|b"],
)
def test_a_rule_that_is_not_a_path_template_is_refused(template: str) -> None:
    with pytest.raises(ValueError, match="route"):
        RoutingTable([RouteRule(template, "booking")])


def _document(paths: list[str]) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "x", "version": "1"},
        "paths": {
            path: {"get": {"operationId": f"op{index}", "responses": {}}}
            for index, path in enumerate(paths)
        },
    }


def test_the_merged_document_keeps_each_path_once_under_the_service_that_answers_it() -> None:
    booking = _document([*BOOKING_PATHS, "/api/v1/booking/legacy", "/internal/stats"])
    # An events document that (wrongly) describes a path the gateway sends to booking.
    events = _document([*EVENTS_PATHS, "/api/v1/events/{event_id}/checkins"])
    merged = merge_openapi({"paths": {}}, {"booking": booking, "events": events}, {})

    paths = merged["paths"]
    assert set(paths) == {*BOOKING_PATHS, "/api/v1/booking/legacy", *EVENTS_PATHS}
    for path, item in paths.items():
        expected = "booking" if path in BOOKING_PATHS or "/booking/" in path else "events"
        assert item["get"]["tags"] == [expected], path
