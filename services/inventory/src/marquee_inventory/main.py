"""The inventory service: app factory and its description for ``marquee``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from marquee_inventory.settings import InventorySettings
from marquee_platform.app import create_service_app
from marquee_platform.service import ServiceSpec


def create_app(settings: InventorySettings | None = None) -> FastAPI:
    return create_service_app(
        settings or InventorySettings(),
        title="Marquee inventory",
        description="Seat and quantity inventory, holds and sold state.",
    )


SERVICE = ServiceSpec(
    name="inventory",
    settings_class=InventorySettings,
    app_factory="marquee_inventory.main:create_app",
    dev_port=8004,
    migrations=Path(__file__).parent / "migrations",
)
