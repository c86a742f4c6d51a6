"""Payments refuses to start without a way to take money: the simulated provider (anyone
can pay their own order with it) must be enabled explicitly, Stripe needs its keys."""

from __future__ import annotations

import pytest

from marquee_payments.main import SERVICE, create_app
from marquee_payments.settings import PaymentsSettings
from marquee_testing.fixtures import DatabaseFactory


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({}, "PAYMENTS_SIMULATOR_ENABLED"),
        ({"provider": "stripe"}, "PAYMENTS_STRIPE_API_KEY"),
    ],
)
async def test_payments_will_not_start_without_a_provider(
    make_database: DatabaseFactory, kafka_bootstrap: str, settings: dict[str, object], says: str
) -> None:
    assert SERVICE.migrations is not None
    url = await make_database(SERVICE.migrations, prefix="payments_startup")
    app = create_app(
        PaymentsSettings(
            database_url=url, kafka_bootstrap=kafka_bootstrap, log_json=False, **settings
        )
    )
    with pytest.raises(ValueError, match=says):
        async with app.router.lifespan_context(app):
            pass
