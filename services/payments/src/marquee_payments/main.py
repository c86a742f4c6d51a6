"""The payments service: app factory and its description for ``marquee``."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from fastapi import FastAPI

from marquee_payments import api
from marquee_payments.booking_client import BookingClient
from marquee_payments.providers_factory import DEV_PORT, build_provider, close_provider
from marquee_payments.settings import PaymentsSettings
from marquee_payments.simulator import SimulatedProvider, simulator_routes
from marquee_platform.app import create_service_app
from marquee_platform.periodic import PeriodicTask
from marquee_platform.service import ServiceSpec


def create_app(settings: PaymentsSettings | None = None) -> FastAPI:
    settings = settings or PaymentsSettings()

    async def start_payments(app: FastAPI, stack: AsyncExitStack) -> None:
        # Tests may put their own provider or booking client on the app first.
        if getattr(app.state, "provider", None) is None:
            app.state.provider = build_provider(settings, app.state.database)
            stack.push_async_callback(close_provider, app.state.provider)
        if getattr(app.state, "booking_client", None) is None:
            app.state.booking_client = BookingClient(
                settings.booking_url, timeout_seconds=settings.booking_timeout_seconds
            )
            stack.push_async_callback(app.state.booking_client.aclose)

    async def deliver_simulated_webhooks(app: FastAPI) -> None:
        provider = app.state.provider
        if isinstance(provider, SimulatedProvider):
            await provider.deliver_due()

    return create_service_app(
        settings,
        title="Marquee payments",
        description="Payments for orders through Stripe (or a simulated Stripe in make dev): "
        "PaymentIntents, signed webhooks applied once and in any order, refunds, disputes, "
        "a double-entry ledger, fraud checks and reviews.",
        routers=[*api.ROUTERS, simulator_routes],
        on_startup=[start_payments],
        periodic_tasks=[
            lambda app: PeriodicTask(
                "payments-simulated-webhooks",
                every_seconds=settings.simulator_retry_seconds,
                run=lambda: deliver_simulated_webhooks(app),
                single_runner=app.state.database,
            ),
        ],
    )


SERVICE = ServiceSpec(
    name="payments",
    settings_class=PaymentsSettings,
    app_factory="marquee_payments.main:create_app",
    dev_port=DEV_PORT,
    migrations=Path(__file__).parent / "migrations",
    consumer_factory="marquee_payments.consumers:create_consumer",
)
