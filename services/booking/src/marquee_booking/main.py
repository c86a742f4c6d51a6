"""The booking service: app factory and its description for ``marquee``."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from fastapi import FastAPI

from marquee_booking import api
from marquee_booking.inventory_client import InventoryClient
from marquee_booking.settings import BookingSettings
from marquee_platform.app import create_service_app
from marquee_platform.service import ServiceSpec


def create_app(settings: BookingSettings | None = None) -> FastAPI:
    settings = settings or BookingSettings()

    async def start_booking(app: FastAPI, stack: AsyncExitStack) -> None:
        # A test may have put an inventory client on the app (one talking to an
        # inventory app in-process); otherwise inventory is reached over HTTP.
        client = getattr(app.state, "inventory_client", None)
        if client is None:
            client = InventoryClient(
                settings.inventory_url, timeout_seconds=settings.inventory_timeout_seconds
            )
            app.state.inventory_client = client
        stack.push_async_callback(client.aclose)

    return create_service_app(
        settings,
        title="Marquee booking",
        description="Orders from holds, promo codes, tickets with signed barcodes, "
        "check-in at the door, refunds and transfers.",
        routers=list(api.ROUTERS),
        on_startup=[start_booking],
    )


SERVICE = ServiceSpec(
    name="booking",
    settings_class=BookingSettings,
    app_factory="marquee_booking.main:create_app",
    dev_port=8005,
    migrations=Path(__file__).parent / "migrations",
    consumer_factory="marquee_booking.consumers:create_consumer",
)
