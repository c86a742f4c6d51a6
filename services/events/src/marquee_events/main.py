"""The events service: app factory and its description for ``marquee``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from marquee_events.settings import EventsSettings
from marquee_platform.app import create_service_app
from marquee_platform.service import ServiceSpec


def create_app(settings: EventsSettings | None = None) -> FastAPI:
    return create_service_app(
        settings or EventsSettings(),
        title="Marquee events",
        description="Venues, seating maps, events, ticket types and reviews.",
    )


SERVICE = ServiceSpec(
    name="events",
    settings_class=EventsSettings,
    app_factory="marquee_events.main:create_app",
    dev_port=8002,
    migrations=Path(__file__).parent / "migrations",
)
