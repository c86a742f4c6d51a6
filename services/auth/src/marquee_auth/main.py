"""The auth service: app factory and its description for ``marquee``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from marquee_auth.settings import AuthSettings
from marquee_platform.app import create_service_app
from marquee_platform.service import ServiceSpec


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    return create_service_app(
        settings or AuthSettings(),
        title="Marquee auth",
        description=(
            "Users, roles, credentials and tokens; publishes the JWKS every "
            "service verifies against."
        ),
    )


SERVICE = ServiceSpec(
    name="auth",
    settings_class=AuthSettings,
    app_factory="marquee_auth.main:create_app",
    dev_port=8001,
    migrations=Path(__file__).parent / "migrations",
)
