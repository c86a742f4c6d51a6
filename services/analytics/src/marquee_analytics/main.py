"""The analytics service: app factory and its description for ``marquee``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from marquee_analytics.settings import AnalyticsSettings
from marquee_platform.app import create_service_app
from marquee_platform.service import ServiceSpec


def create_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    return create_service_app(
        settings or AnalyticsSettings(),
        title="Marquee analytics",
        description="Aggregates for the admins' dashboards and reports.",
    )


SERVICE = ServiceSpec(
    name="analytics",
    settings_class=AnalyticsSettings,
    app_factory="marquee_analytics.main:create_app",
    dev_port=8009,
    migrations=Path(__file__).parent / "migrations",
)
