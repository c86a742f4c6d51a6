"""The waitroom service: app factory and its description for ``marquee``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from marquee_platform.app import create_service_app
from marquee_platform.service import ServiceSpec
from marquee_waitroom.settings import WaitroomSettings


def create_app(settings: WaitroomSettings | None = None) -> FastAPI:
    return create_service_app(
        settings or WaitroomSettings(),
        title="Marquee waitroom",
        description=("The fair virtual waiting room: queues, positions and admissions."),
    )


SERVICE = ServiceSpec(
    name="waitroom",
    settings_class=WaitroomSettings,
    app_factory="marquee_waitroom.main:create_app",
    dev_port=8008,
    migrations=Path(__file__).parent / "migrations",
)
