"""The booking service: app factory and its description for ``marquee``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from marquee_booking.settings import BookingSettings
from marquee_platform.app import create_service_app
from marquee_platform.service import ServiceSpec


def create_app(settings: BookingSettings | None = None) -> FastAPI:
    return create_service_app(
        settings or BookingSettings(),
        title="Marquee booking",
        description="Orders, tickets, transfers and promo codes.",
    )


SERVICE = ServiceSpec(
    name="booking",
    settings_class=BookingSettings,
    app_factory="marquee_booking.main:create_app",
    dev_port=8005,
    migrations=Path(__file__).parent / "migrations",
)
