"""The payments service: app factory and its description for ``marquee``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from marquee_payments.settings import PaymentsSettings
from marquee_platform.app import create_service_app
from marquee_platform.service import ServiceSpec


def create_app(settings: PaymentsSettings | None = None) -> FastAPI:
    return create_service_app(
        settings or PaymentsSettings(),
        title="Marquee payments",
        description="Payment attempts, provider events, refunds and the ledger.",
    )


SERVICE = ServiceSpec(
    name="payments",
    settings_class=PaymentsSettings,
    app_factory="marquee_payments.main:create_app",
    dev_port=8006,
    migrations=Path(__file__).parent / "migrations",
)
