"""The notifications service: app factory and its description for ``marquee``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from marquee_notifications.settings import NotificationsSettings
from marquee_platform.app import create_service_app
from marquee_platform.service import ServiceSpec


def create_app(settings: NotificationsSettings | None = None) -> FastAPI:
    return create_service_app(
        settings or NotificationsSettings(),
        title="Marquee notifications",
        description=("Messages, preferences and schedules: what a person should hear about."),
    )


SERVICE = ServiceSpec(
    name="notifications",
    settings_class=NotificationsSettings,
    app_factory="marquee_notifications.main:create_app",
    dev_port=8007,
    migrations=Path(__file__).parent / "migrations",
)
