"""Settings of the payments service (environment prefix ``PAYMENTS_``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr

from marquee_platform.settings import ServiceSettings


class PaymentsSettings(ServiceSettings):
    service_name: ClassVar[str] = "payments"

    provider: Literal["simulated", "stripe"] = Field(
        default="simulated",
        description="Who takes the money: Stripe, or the simulated provider of make dev",
    )
    stripe_api_key: SecretStr | None = None
    stripe_webhook_secrets: list[SecretStr] = Field(
        default_factory=list,
        description="whsec_… of the webhook endpoint (two during a rotation)",
    )
    stripe_api_base: str | None = Field(
        default=None, description="Another Stripe API address (localstripe in tests)"
    )
    simulator_enabled: bool = Field(
        default=False,
        description="Allow the simulated provider (make dev, tests): with it anyone can pay "
        "their own order without money, so a deployment must not set this",
    )
    simulator_webhook_secret: SecretStr = SecretStr("whsec_marquee_simulated_provider")
    simulator_webhook_url: str | None = Field(
        default=None,
        description="Where the simulated provider posts its signed webhooks; by default this "
        "service's own /api/v1/payments/webhooks/simulated on its dev port",
    )
    simulator_retry_seconds: float = 2.0
    """How often undelivered simulated webhooks are retried (with backoff per event)."""
    simulator_lease_seconds: float = 60.0
    """A webhook being delivered is not sent again for this long (a deliverer that died
    mid-delivery leaves it to the next one after the lease)."""
    webhook_tolerance_seconds: int = 300
    """A signature older than this is a replay and is refused (Stripe's default)."""
    booking_url: str = Field(
        default="http://127.0.0.1:8005",
        description="Where booking answers: a new payment reads its order there, as the buyer",
    )
    booking_timeout_seconds: float = 3.0
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        description="Proxies (the gateway) whose X-Forwarded-For names the buyer's address",
    )

    # Fraud checks (velocity over the last hour; the provider's risk of each charge).
    velocity_window_seconds: int = 3600
    max_orders_per_account: int = 20
    max_orders_per_address: int = 60
    max_orders_per_card: int = 10
    review_risk_score: int = Field(
        default=65, description="A charge at or above this risk score waits for an admin"
    )
