"""Payment providers: what the payments service asks of Stripe, and who answers.

- :mod:`~marquee_payments.providers.base` — the :class:`PaymentProvider` protocol, the
  values it returns, its errors, and the readers of Stripe-shaped JSON;
- :mod:`~marquee_payments.providers.signature` — Stripe's webhook signatures;
- :mod:`~marquee_payments.providers.stripe_shaped` — builders of Stripe-shaped objects
  and events (the simulated provider, tests);
- :mod:`~marquee_payments.providers.stripe_adapter` — :class:`StripeProvider`, the real
  one (imported from there: it pulls in the stripe SDK's HTTP client).
"""

from marquee_payments.providers.base import (
    InvalidWebhook,
    PaymentProvider,
    ProviderError,
    ProviderEvent,
    ProviderIntent,
    ProviderPayment,
    ProviderRefund,
    ProviderUnavailable,
    provider_event_from_stripe,
)
from marquee_payments.providers.signature import sign_payload, verify_signature

__all__ = [
    "InvalidWebhook",
    "PaymentProvider",
    "ProviderError",
    "ProviderEvent",
    "ProviderIntent",
    "ProviderPayment",
    "ProviderRefund",
    "ProviderUnavailable",
    "provider_event_from_stripe",
    "sign_payload",
    "verify_signature",
]
