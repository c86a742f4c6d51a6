"""The configured payment provider, for the app and the consumer alike."""

from __future__ import annotations

import httpx

from marquee_payments.providers.base import PaymentProvider
from marquee_payments.settings import PaymentsSettings
from marquee_payments.simulator import SimulatedProvider
from marquee_platform.clock import Clock, utc_now
from marquee_platform.db import Database

DEV_PORT = 8006


def build_provider(
    settings: PaymentsSettings,
    database: Database,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = utc_now,
) -> PaymentProvider:
    if settings.provider == "stripe":
        from marquee_payments.providers.stripe_adapter import StripeProvider

        if settings.stripe_api_key is None or not settings.stripe_webhook_secrets:
            raise ValueError(
                "PAYMENTS_PROVIDER=stripe needs PAYMENTS_STRIPE_API_KEY and "
                "PAYMENTS_STRIPE_WEBHOOK_SECRETS (the endpoint's whsec_… secret)"
            )
        return StripeProvider(
            settings.stripe_api_key.get_secret_value(),
            [secret.get_secret_value() for secret in settings.stripe_webhook_secrets],
            api_base=settings.stripe_api_base,
            webhook_tolerance_seconds=settings.webhook_tolerance_seconds,
        )
    if not settings.simulator_enabled:
        raise ValueError(
            "payments has no payment provider: set PAYMENTS_PROVIDER=stripe with "
            "PAYMENTS_STRIPE_API_KEY and PAYMENTS_STRIPE_WEBHOOK_SECRETS, or, for development "
            "only, PAYMENTS_SIMULATOR_ENABLED=true (make dev does)"
        )
    # The simulator is another party: its own pool, so a request holding one of payments'
    # connections while it calls the provider never waits for another connection of the
    # same pool (which, with every request doing so, would deadlock the pool).
    return SimulatedProvider(
        Database(
            settings.database_url,
            pool_size=settings.database_pool_size,
            application_name="marquee-payments-simulator",
        ),
        owns_database=True,
        lease_seconds=settings.simulator_lease_seconds,
        webhook_secret=settings.simulator_webhook_secret.get_secret_value(),
        webhook_url=settings.simulator_webhook_url
        or f"http://127.0.0.1:{DEV_PORT}/api/v1/payments/webhooks/simulated",
        transport=transport,
        clock=clock,
        tolerance_seconds=settings.webhook_tolerance_seconds,
    )


async def close_provider(provider: PaymentProvider) -> None:
    close = getattr(provider, "aclose", None)
    if close is not None:
        await close()
