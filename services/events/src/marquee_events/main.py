"""The events service: app factory and its description for ``marquee``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from marquee_events import api
from marquee_events.settings import EventsSettings
from marquee_platform.app import create_service_app
from marquee_platform.clock import Clock, utc_now
from marquee_platform.service import ServiceSpec


def create_app(settings: EventsSettings | None = None, *, clock: Clock = utc_now) -> FastAPI:
    """``clock`` is what "now" means to the rules (publishing, reviews, completion); the
    platform's ``ClockDep`` hands it to the endpoints."""
    app = create_service_app(
        settings or EventsSettings(),
        title="Marquee events",
        description="Venues, seating maps, events, ticket types and reviews.",
        routers=[api.venue_routes, api.event_routes, api.ticket_type_routes, api.review_routes],
    )
    app.state.clock = clock
    return app


SERVICE = ServiceSpec(
    name="events",
    settings_class=EventsSettings,
    app_factory="marquee_events.main:create_app",
    dev_port=8002,
    migrations=Path(__file__).parent / "migrations",
    consumer_factory="marquee_events.consumers:create_consumer",
)
