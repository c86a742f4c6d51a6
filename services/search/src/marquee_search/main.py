"""The search service: app factory and its description for ``marquee``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from marquee_platform.app import create_service_app
from marquee_platform.service import ServiceSpec
from marquee_search.settings import SearchSettings


def create_app(settings: SearchSettings | None = None) -> FastAPI:
    return create_service_app(
        settings or SearchSettings(),
        title="Marquee search",
        description=("The search index of events, rebuilt from the events change stream."),
    )


SERVICE = ServiceSpec(
    name="search",
    settings_class=SearchSettings,
    app_factory="marquee_search.main:create_app",
    dev_port=8003,
    migrations=Path(__file__).parent / "migrations",
)
